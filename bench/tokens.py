"""Token verification cost: our verifier against python-jose's bare decode (the baseline).

Prints microseconds per verification and the ratio to the baseline measured in the same run.
Usage: uv run python -m bench.tokens [iterations]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from jose import jwt

from kernel.keyring import load_keyring
from kernel.tokens import StaticKeySource, TokenSigner, TokenVerifier, keys_from_jwks

ISS, AUD = "https://issuer.bench", "bench"


async def main(iterations: int) -> None:
    ring = load_keyring(Path(tempfile.mkdtemp()) / "keys.json", create=True)
    token = TokenSigner(ring.signing_key, issuer=ISS, audience=AUD).sign(
        subject="s", kind="staff", lifetime_seconds=3600, roles=["auditor"]
    )
    keys = keys_from_jwks(ring.public_jwks())
    key = next(iter(keys.values()))
    verifier = TokenVerifier(StaticKeySource(keys), issuer=ISS, audience=AUD)

    started = time.perf_counter()
    for _ in range(iterations):
        jwt.decode(token, key, algorithms=["RS256"], audience=AUD, issuer=ISS)
    baseline = (time.perf_counter() - started) / iterations

    started = time.perf_counter()
    for _ in range(iterations):
        await verifier.verify(token)
    ours = (time.perf_counter() - started) / iterations

    print(f"iterations: {iterations}")
    print(f"python-jose decode, key object (baseline): {baseline * 1e6:8.1f} us")
    print(f"kernel TokenVerifier.verify:               {ours * 1e6:8.1f} us")
    print(f"ratio to baseline:                         {ours / baseline:8.2f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
