"""The benchmarks' trust in a running stand-in's throwaway CA, for the length of a block."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@contextmanager
def standin_trusted(standin: Any) -> Iterator[None]:
    """Inside the block, HTTPS clients trust ``standin``'s CA (as well as the system's); after it, the CA
    variables are as they were."""
    saved = {name: os.environ.get(name) for name in CA_VARIABLES}
    env = standin.environment(standin.write_ca_bundle())
    os.environ.update({name: env[name] for name in CA_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
