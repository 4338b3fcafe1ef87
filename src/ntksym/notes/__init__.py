"""Teaching notes (LaTeX, PDF, Markdown) from a checked derivation: ``ntksym notes``."""

from ntksym.notes.build import (
    NotesBuild,
    NotesBuildError,
    TeXMissingError,
    build_notes,
    compile_pdf,
)
from ntksym.notes.network import network_derivation
from ntksym.notes.network_build import build_network_notes
from ntksym.notes.printer import NotesPrinter, notes_latex

__all__ = [
    "NotesBuild",
    "NotesBuildError",
    "NotesPrinter",
    "TeXMissingError",
    "build_network_notes",
    "build_notes",
    "compile_pdf",
    "network_derivation",
    "notes_latex",
]
