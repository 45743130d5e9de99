"""One module per ``stemwatch`` subcommand, each with ``register(subparsers)``."""

from types import ModuleType

from stemwatch.commands import (
    alert_test,
    bench,
    compare,
    config,
    dashboard,
    dataset,
    demo,
    evaluate,
    export,
    label,
    labels,
    platemap,
    reanalyse,
    status,
    synth,
    train,
    watch,
)

COMMANDS: tuple[ModuleType, ...] = (
    demo,
    synth,
    label,
    dataset,
    train,
    evaluate,
    export,
    watch,
    status,
    platemap,
    labels,
    reanalyse,
    compare,
    alert_test,
    dashboard,
    bench,
    config,
)
