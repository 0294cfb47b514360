"""Where scripts live (R9.1): the administrator's copies in TARISCOPE_SCRIPTS_DIR, and the
shipped ones in scripts/shipped/, copied there on first start (an edited copy is never
overwritten)."""
import shutil
from pathlib import Path

from django.conf import settings

SHIPPED = Path(__file__).resolve().parent / "shipped"


def shipped_scripts_install() -> list[Path]:
    """Copy each shipped script into TARISCOPE_SCRIPTS_DIR unless a file of its name is
    there already; return the ones copied."""
    folder = Path(settings.SCRIPTS_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for source in sorted(SHIPPED.glob("*.py")):
        target = folder / source.name
        if not target.exists():
            shutil.copyfile(source, target)
            copied.append(target)
    return copied


def script_path(name: str) -> Path:
    """The file of script `name`: a path to a file, or a name (with or without .py) in
    TARISCOPE_SCRIPTS_DIR, else among the shipped scripts."""
    given = Path(name)
    if given.is_file():
        return given.resolve()
    file_name = name if name.endswith(".py") else f"{name}.py"
    for folder in (Path(settings.SCRIPTS_DIR), SHIPPED):
        candidate = folder / file_name
        if "/" not in file_name and candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no script {name!r}: not a file, and not in {settings.SCRIPTS_DIR} "
                            "or among the shipped scripts")


def scripts_available() -> list[str]:
    """The file names a binding may name: the scripts folder's, then the shipped ones not
    copied there (yet)."""
    names = set()
    for folder in (Path(settings.SCRIPTS_DIR), SHIPPED):
        if folder.is_dir():
            names.update(path.name for path in folder.glob("*.py")
                         if not path.name.startswith(("_", ".")))
    return sorted(names)
