"""R9.1: the shipped scripts are copied into TARISCOPE_SCRIPTS_DIR, never over an edited
copy; a script is found by its file or by its name (scripts/files.py)."""
import pytest

from scripts.files import SHIPPED, script_path, shipped_scripts_install

pytestmark = pytest.mark.embedded


def test_shipped_scripts_are_copied_once_and_an_edited_copy_is_kept(settings, tmp_path):
    # given an empty scripts folder
    settings.SCRIPTS_DIR = tmp_path / "scripts"
    shipped = sorted(path.name for path in SHIPPED.glob("*.py"))
    assert shipped, "scripts/shipped/ holds the shipped scripts"
    # when the shipped scripts are installed, one copy is edited, and they are installed again
    first = shipped_scripts_install()
    edited = settings.SCRIPTS_DIR / shipped[0]
    edited.write_text("# my own version\n")
    second = shipped_scripts_install()
    # then every shipped script was copied the first time, none the second, and the edit stays
    assert sorted(path.name for path in first) == shipped
    assert second == []
    assert edited.read_text() == "# my own version\n"


def test_a_script_is_found_by_path_by_name_in_the_folder_then_among_the_shipped(settings,
                                                                              tmp_path):
    # given a scripts folder holding its own copy of one script
    settings.SCRIPTS_DIR = tmp_path / "scripts"
    settings.SCRIPTS_DIR.mkdir()
    own = settings.SCRIPTS_DIR / "fraud.py"
    own.write_text("# edited\n")
    elsewhere = tmp_path / "mine.py"
    elsewhere.write_text("# mine\n")
    # then a path, a name with or without .py, and a shipped name are found, in that order
    assert script_path(str(elsewhere)) == elsewhere.resolve()
    assert script_path("fraud") == own
    assert script_path("fraud.py") == own
    # and an unknown one is refused with the places looked in
    with pytest.raises(FileNotFoundError, match="no script 'nothing'"):
        script_path("nothing")
