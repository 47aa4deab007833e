"""One module per CLI subcommand: `add_arguments(parser)` and `run(args) -> int`.

Modules here import only the standard library at top level; heavy imports go inside `run`.
"""
