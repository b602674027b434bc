#!/usr/bin/python3
"""Sizes: the agent binary (static, stripped), full and ttrpc-only (-DKATA_GRPC=OFF); the
production initrd (gzip cpio: the agent is all of it); our kernel against Debian's stock one
(bench/fetch-stock-kernel.sh). One measurement each (sizes do not vary between runs)."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guestlib  # noqa: E402
from benchlib import BUILD_DIR, TTRPC_BUILD_DIR, emit, record  # noqa: E402

MIB = 1 << 20
HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    full = os.path.join(BUILD_DIR, "bin", "kata-agent")
    tt = os.path.join(TTRPC_BUILD_DIR, "bin", "kata-agent")
    if os.path.exists(full):
        emit(record("size_agent_full_bytes", [os.path.getsize(full)], "bytes", "none", [],
                    note="full agent (gRPC + ttrpc), static, stripped"))
    if os.path.exists(tt):
        emit(record("size_agent_ttrpc_only_bytes", [os.path.getsize(tt)], "bytes", "the full agent",
                    [os.path.getsize(full)] if os.path.exists(full) else [], target=6 * MIB,
                    note="ttrpc-only flavour (-DKATA_GRPC=OFF), static, stripped") | {"target_on": "value"})
    else:
        print(f"sizes: {tt} is missing (make bench builds it)", file=sys.stderr)
    if os.path.exists(guestlib.INITRD):
        emit(record("size_initrd_bytes", [os.path.getsize(guestlib.INITRD)], "bytes", "the agent binary",
                    [os.path.getsize(full)] if os.path.exists(full) else [],
                    note="production initrd (gzip newc cpio, the agent as /init)"))
    stock = guestlib.stock_kernel()
    if not stock:
        subprocess.run([os.path.join(HERE, "fetch-stock-kernel.sh")], check=False)
        stock = guestlib.stock_kernel()
    if os.path.exists(guestlib.KERNEL):
        emit(record("size_kernel_bytes", [os.path.getsize(guestlib.KERNEL)], "bytes",
                    f"Debian {os.path.basename(stock)} (without its modules)" if stock else "none",
                    [os.path.getsize(stock)] if stock else [],
                    note="bzImage; ours has every driver the guest needs built in, no modules"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
