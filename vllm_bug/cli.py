"""The command line: click options, one call into vllm_bug.commands per command, and the rendering of its Result.

Heavy modules are imported inside the commands so that `vllm-bug --help` stays instant.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

from vllm_bug import __version__
from vllm_bug.errors import EXIT_FAILURE, VllmBugError

if TYPE_CHECKING:
    from vllm_bug.commands import Result

EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """\b
Exit codes:
  0  ok
  1  failure (cannot write, output exists, command failed, collect --ray without Ray or a cluster)
  2  usage error (merge: the same node twice)
  3  input is not a readable bundle or report
  4  input refused as unsafe (too large, decompression bomb, too many JSON values, too deep)
  130  interrupted (Ctrl-C); nothing is left half-written
"""

PYTHON_HELP = (
    "Interpreter (or environment folder) whose torch and vLLM to inspect. Default: the command's own "
    "interpreter for run, else the active VIRTUAL_ENV or CONDA_PREFIX, else the one in the #! line of "
    "vllm on PATH, else vllm-bug's own."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP)
@click.version_option(__version__, "-V", "--version", prog_name="vllm-bug")
def cli() -> None:
    """Turn a failed vLLM run into a complete, redacted bug report, and diagnose such reports offline.

    \b
    On the machine where vLLM failed:
      vllm serve MODEL ... 2>&1 | tee vllm.log
      vllm-bug collect --log vllm.log          # or: vllm-bug run -- vllm serve MODEL ...
    On any machine, no GPU needed:
      vllm-bug analyze vllm-bug-bundle.zst
    """


@cli.command(epilog=EXIT_CODES_HELP)
@click.option(
    "--log",
    "log_path",
    metavar="FILE|-",
    help="Log of the failed run; '-' reads standard input. A missing, unreadable, empty or binary log exits 3.",
)
@click.option(
    "-o",
    "--output",
    "output",
    metavar="PATH",
    help="Bundle path (default: vllm-bug-<time>.zst in the current directory); the report files and the "
    ".zip are written beside it, so the name must not end in .md or .zip.",
)
@click.option("--force", is_flag=True, help="Overwrite the output files if they exist.")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(1, 3600),
    default=60.0,
    show_default=True,
    help="Bound, in seconds, on the whole collection; each probe also has its own timeout.",
)
@click.option("--python", "python_exe", metavar="PATH", help=PYTHON_HELP)
@click.option(
    "--model", "model", metavar="PATH|NAME", help="Model whose config.json to summarise (default: found in the log)."
)
@click.option("-q", "--quiet", is_flag=True, help="Print only the bundle path.")
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="auto",
    default=None,
    metavar="[ADDRESS]",
    help="Also collect from every node of the running Ray cluster at ADDRESS (default: auto, the one this "
    "machine belongs to) into one bundle; never starts a cluster. Needs pip install 'vllm-bug[ray]'; "
    "without Ray this exits 1.",
)
@click.option(
    "--node-timeout",
    "node_timeout_s",
    type=click.FloatRange(1, 3600),
    metavar="SECONDS",
    help="With --ray: how long to wait for each node's answer (default: --timeout + 30).",
)
def collect(**options: Any) -> None:
    """Collect a redacted, schema-validated bundle about this machine and the failed run.

    With --ray, every node of the Ray cluster is collected at the same time by a task that takes no CPU
    or GPU from the cluster; a node that is dead, fails or does not answer in time is recorded as such.
    """
    from vllm_bug.commands import collect as collect_command

    _render(collect_command.execute(**options))


@cli.command(
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}, epilog=EXIT_CODES_HELP
)
@click.option(
    "-o",
    "--output",
    "output",
    metavar="PATH",
    help="Bundle path if the command fails (default: vllm-bug-<time>.zst); the .md report and the .zip "
    "are written beside it.",
)
@click.option("--force", is_flag=True, help="Overwrite the output files if they exist.")
@click.option("--always", is_flag=True, help="Collect a bundle even when the command succeeds.")
@click.option("--python", "python_exe", metavar="PATH", help=PYTHON_HELP)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(**options: Any) -> None:
    """Run COMMAND with its output passing through; if it fails, collect a bundle with its output as the log.

    Exits with COMMAND's exit code (128+N if signal N killed it; 127 if it cannot be started).
    Put `--` before the command: vllm-bug run -- vllm serve MODEL

    Signals reach COMMAND and every process it starts: Ctrl-C, Ctrl-\\, SIGTERM and
    SIGHUP are passed on; Ctrl-Z stops COMMAND and vllm-bug together (fg and bg continue
    both); a second Ctrl-C sends SIGTERM, and SIGKILL follows 10 s later or at a third
    Ctrl-C. On Linux, COMMAND gets SIGTERM if vllm-bug itself dies.
    """
    from vllm_bug.commands import run as run_command

    _render(run_command.execute(**options))


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("input_path", metavar="INPUT")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option(
    "-o", "--output", "output", metavar="FILE", help="Write the result to FILE instead of standard output ('-')."
)
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@click.option("--explain", is_flag=True, help="Show which frames and words went into the signature.")
def analyze(**options: Any) -> None:
    """Diagnose INPUT: a bundle (.zst), collect's .zip or .md beside it, or plain text; '-' reads stdin.

    Plain text is a log, a pasted GitHub issue or collect_env output.

    The kind of input is told by its content, never by its name. Secrets found in the input are
    redacted before anything is shown.
    """
    from vllm_bug.commands import analyze as analyze_command

    _render(analyze_command.execute(**options))


@cli.command(epilog=EXIT_CODES_HELP)
@click.option("--config", "config_path", metavar="PATH", help="A model's config.json (or a directory holding one).")
@click.option(
    "--model", "model_name", metavar="NAME", help="A well-known model from the built-in table (see --list-models)."
)
@click.option("--list-models", is_flag=True, help="List the built-in models and exit.")
@click.option("--gpu", "gpu", metavar="NAME|GiB", help="GPU model (e.g. A100-80GB, H100) or its memory in GiB.")
@click.option("--num-gpus", type=click.IntRange(1, 1024), default=1, show_default=True, help="GPUs available.")
@click.option("--tensor-parallel-size", "-tp", "tp", type=click.IntRange(1, 1024), help="Default: the number of GPUs.")
@click.option("--max-model-len", type=click.IntRange(1), help="Context length per sequence.")
@click.option(
    "--max-num-seqs",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Concurrent sequences to hold in the KV cache.",
)
@click.option("--gpu-memory-utilization", type=click.FloatRange(0, 1, min_open=True), default=0.92, show_default=True)
@click.option(
    "--dtype",
    default="auto",
    show_default=True,
    help="Weight dtype: auto, float16, bfloat16, float32, fp8, int8, int4.",
)
@click.option(
    "--kv-cache-dtype", default="auto", show_default=True, help="auto (same as dtype), fp8, float16, bfloat16."
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def memory(**options: Any) -> None:
    """Show the memory arithmetic for serving a model: weights per GPU, KV cache per token, what fits.

    \b
    Example: vllm-bug memory --model Llama-3.1-70B --gpu A100-80GB --num-gpus 2 --max-model-len 16384 --max-num-seqs 64
    Exit codes: 0 printed (fits or not), 2 bad options (unknown model, GPU or dtype),
    3 the config is missing, unreadable or not a model config, 4 the config is too large or nested too deep.
    """
    from vllm_bug.commands import memory as memory_command

    _render(memory_command.execute(**options))


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("bundle", metavar="BUNDLE")
def show(bundle: str) -> None:
    """Print a bundle's JSON document (validated first, and redacted again like every input)."""
    from vllm_bug.commands import show as show_command

    _render(show_command.execute(bundle))


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("bundle", metavar="BUNDLE")
def validate(bundle: str) -> None:
    """Check that BUNDLE is a well-formed bundle this version can read."""
    from vllm_bug.commands import validate as validate_command

    _render(validate_command.execute(bundle))


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("bundles", nargs=-1, required=True, metavar="BUNDLE...")
@click.option("-o", "--output", "output", metavar="PATH", required=True, help="The cluster bundle to write.")
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists (never one of the bundles merged).")
def merge(bundles: tuple[str, ...], output: str, force: bool) -> None:
    """Combine bundles collected on each node of one job (torchrun, slurm, ssh) into one cluster bundle.

    The first BUNDLE is the node the report is about (put the one whose log shows the failure first).
    The same node given twice exits 2; a cluster bundle among them brings all its nodes.
    """
    from vllm_bug.commands import merge as merge_command

    _render(merge_command.execute(list(bundles), output, force))


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("paths", nargs=-1, required=True, metavar="DIR|FILES...")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option(
    "-o", "--output", "output", metavar="FILE", help="Write the result to FILE instead of standard output ('-')."
)
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@click.option("-j", "--jobs", type=click.IntRange(1, 256), help="Worker processes (default: CPU count).")
def triage(**options: Any) -> None:
    """Analyze many bundles and text reports in parallel and group them by root-cause signature.

    Each input gets a worker process with bounded time and memory; one that fails is listed as a bad
    file with its reason, and the table is written whatever happens to single inputs.

    A list of reports (JSON Lines, or the JSON array of `gh issue list --json number,title,body,url`)
    counts as one input per report, with its issue number and URL kept; '-' reads standard input.
    """
    from vllm_bug.commands import triage as triage_command

    _render(triage_command.execute(**options))


def _render(result: Result) -> NoReturn:
    """Show a command's Result: its output, then warnings and error on stderr; exit with its code."""
    from vllm_bug.commands.output import json_text, terminal_safe, terminal_safe_lines

    text = result.text
    if text is None and result.document is not None:
        text = json_text(result.document)
    if text is not None:
        text = terminal_safe_lines(text)
        if result.destination.path is not None:
            result.destination.write(text.encode("utf-8", "replace"))
        else:
            stream = sys.stderr if result.to_stderr else sys.stdout
            stream.write(text)
            stream.flush()
    for warning in result.warnings:
        click.echo(f"vllm-bug: warning: {terminal_safe(warning)}", err=True)
    if result.error:
        click.echo(f"vllm-bug: error: {terminal_safe(result.error)}", err=True)
    sys.exit(result.exit_code)


def main(argv: list[str] | None = None) -> None:
    try:
        code = cli.main(args=argv, prog_name="vllm-bug", standalone_mode=False)
    except click.ClickException as exc:  # usage errors: click's own message and code (2)
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:  # click's name for Ctrl-C (or end of input at a prompt)
        _say_interrupted()
    except KeyboardInterrupt:
        _say_interrupted()
    except VllmBugError as exc:
        _error(str(exc), exc.exit_code)
    except BrokenPipeError:  # `vllm-bug ... | head`: the reader left; say nothing more
        _silence_stdout()
        sys.exit(EXIT_FAILURE)
    except Exception as exc:  # a bug in vllm-bug: still one line, unless asked for the traceback
        if os.environ.get("VLLM_BUG_DEBUG"):
            raise
        _error(f"internal error: {type(exc).__name__}: {exc} (set VLLM_BUG_DEBUG=1 for the traceback)", EXIT_FAILURE)
    sys.exit(code if isinstance(code, int) else 0)


def _error(message: str, code: int) -> NoReturn:
    from vllm_bug.commands.output import terminal_safe

    click.echo(f"vllm-bug: error: {terminal_safe(message)}", err=True)
    sys.exit(code)


def _say_interrupted() -> NoReturn:
    click.echo("vllm-bug: interrupted", err=True)
    sys.exit(EXIT_INTERRUPTED)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
