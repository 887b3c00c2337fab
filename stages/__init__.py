"""One thin CLI per DVC stage: ``python -m stages.<name>``.

Arrow's allocator (its bundled mimalloc) returns freed pages to the system at once instead of
keeping them for reuse: with the default delay a streaming stage's resident memory crept up with
the rows that passed (prepare on 20 000 DiffusionDB images: 424 MiB peak, against 368 MiB; see
``benchmarks/encode_memory.py``). mimalloc reads the option when it starts, so it is set here,
before any stage module imports pyarrow; a setting in the environment wins.
"""

import os

os.environ.setdefault("MIMALLOC_PURGE_DELAY", "0")
