"""The ``distillset`` command line (DESIGN.md contract): :mod:`.parser` builds the flags, :mod:`.commands` and
:mod:`.graph` parse, call the library and print.

User errors (DistillsetError) become one line on stderr and exit code 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ..errors import DistillsetError
from ..host_memory import retain_freed_memory
from . import commands, graph
from .parser import build_parser

DISTRIBUTED_COMMANDS = ("condense", "evaluate")
COMMANDS = {"methods": commands.cmd_methods, "coreset": commands.cmd_coreset, "condense": commands.cmd_condense,
            "experts": commands.cmd_experts, "continual": commands.cmd_continual, "nas": commands.cmd_nas,
            "train-pool": commands.cmd_train_pool, "graph-report": graph.cmd_graph_report, "evaluate": commands.cmd_evaluate,
            "show": commands.cmd_show, "score": commands.cmd_score, "compare": commands.cmd_score,
            "import": commands.cmd_import, "experiment": commands.cmd_experiment, "demo": commands.cmd_demo}


def main(argv: Sequence[str] | None = None, leave_group_open: bool = False) -> int:
    """Run one command; returns its exit status. ``leave_group_open`` (for :func:`entry` only): under
    torchrun, a command that succeeded returns with its process group still up, for the caller to exit at once."""
    retain_freed_memory()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from .. import distributed

    keep_group = False
    try:
        if getattr(args, "threads", None):
            import torch

            torch.set_num_threads(args.threads)
        if getattr(args, "deterministic", False):
            from ..device import set_deterministic

            set_deterministic()
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            if args.command not in DISTRIBUTED_COMMANDS:
                raise DistillsetError(f"'{args.command}' does not run under torchrun; launch it as one process "
                                      f"(distributed: {', '.join(DISTRIBUTED_COMMANDS)})")
            distributed.init_from_environment(args.device)
        status = COMMANDS[args.command](args)
        # Every rank reaches here before any tears the group down, so no rank leaves while a peer's last
        # collective is in flight.
        distributed.context().barrier()
        keep_group = leave_group_open and distributed.context().active
        return status
    except DistillsetError as exc:
        print(f"distillset: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("distillset: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        if not keep_group:
            distributed.shutdown()


def entry() -> None:
    """The `distillset` command and `python -m distillset`.

    Under torchrun a rank whose command succeeded (every rank past the final barrier, every file written
    and closed) leaves with ``os._exit`` after flushing its output, skipping the gloo group's teardown and
    the interpreter's: in CI a rank aborted there now and then ("terminate called without an active
    exception", SIGABRT, exit -6) after its work was done, barrier or not, which failed a finished run.
    """
    status = main(leave_group_open=True)
    from .. import distributed

    if distributed.context().active:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


if __name__ == "__main__":
    entry()
