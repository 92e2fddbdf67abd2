"""Which libraries a worker pool imports once, in a fork server, instead of once in every worker.

Importing torch takes a worker about a second of CPU, and every worker of every instance pays it again, as does
every worker started to replace one that crashed, hung or was recycled. Workers forked from a server that has
imported the heavy libraries already start in milliseconds and share those pages.

Only libraries known to be safe to fork after import are preloaded: they start no threads and touch no GPU when
imported (a CUDA context cannot cross a fork). The scoring script itself is never imported in the server: its
module code is the user's, and may do anything. The server imports the libraries with the workers' environment,
so thread limits read at import (OpenMP's) are the workers' own.
"""

from __future__ import annotations

import ast
import multiprocessing

FORK_SAFE = frozenset({"numpy", "pandas", "torch", "PIL", "sklearn", "scipy", "pyarrow"})
# What every worker imports to turn run()'s results into rows: the libraries, and our module that does it (with the
# job's models it imports, it cost each worker about 0.1 s of CPU after the fork, on the path to the first part).
ALWAYS = ("numpy", "pandas", "batch_container.rows")


def libraries(script_path: str) -> list[str]:
    """The fork-safe libraries the scoring script imports at its top level, and those every worker needs."""
    try:
        with open(script_path, "rb") as f:
            tree = ast.parse(f.read(), filename=script_path)
    except (OSError, SyntaxError, ValueError):
        return list(ALWAYS)  # the worker reports what is wrong with the script when it loads it
    named: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            named += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            named.append(node.module)
    tops = [name.partition(".")[0] for name in named]
    return list(dict.fromkeys([*ALWAYS, *(top for top in tops if top in FORK_SAFE)]))


def available() -> bool:
    return "forkserver" in multiprocessing.get_all_start_methods()
