"""Teaching notes (LaTeX, PDF, Markdown) from a checked derivation: ``ntksym notes``."""

from ntksym.notes.build import (
    NotesBuild,
    NotesBuildError,
    TeXMissingError,
    build_notes,
    compile_pdf,
)
from ntksym.notes.printer import NotesPrinter, notes_latex

__all__ = [
    "NotesBuild",
    "NotesBuildError",
    "NotesPrinter",
    "TeXMissingError",
    "build_notes",
    "compile_pdf",
    "notes_latex",
]
