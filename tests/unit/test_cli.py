import subprocess
import sys

import pytest

from fashiontag.cli import build_parser
from fashiontag.serving.server import find_free_port

COMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([command, "--help"])
    assert info.value.code == 0
    assert command in capsys.readouterr().out


def test_server_commands_bind_loopback_by_default():
    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1" and args.model_control == "none"


def test_tag_against_no_server_fails_with_a_clear_error_not_a_traceback(tmp_path):
    image = tmp_path / "x.jpg"
    image.write_bytes(b"not really")
    port = find_free_port()
    done = subprocess.run([sys.executable, "-m", "fashiontag", "tag", str(image),
                           "--url", f"127.0.0.1:{port}", "--timeout", "2"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "error:" in done.stderr and "Traceback" not in done.stderr


def test_client_only_commands_do_not_import_torch():
    code = ("import sys; from fashiontag.cli import build_parser; build_parser(); "
            "import fashiontag.client; "
            "print(any(m == 'torch' or m.startswith('torch.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
