"""The Python gRPC client (ContainerClient) for an agent inside a VM.

python3-grpcio cannot dial a hybrid vsock socket itself, so a forwarder listens on a host
unix socket and relays each connection through the hybrid vsock handshake ("CONNECT 1024")
to the agent's port in the guest:

    with GuestAgentClient(vm) as c:            # a katavm.VM with the agent up
        c.create("c1", spec); c.start("c1"); ...

Never opens AF_VSOCK on the host."""
import os
import socket
import tempfile
import threading

from .containers import ContainerClient
from .hvsock import hv_connect

AGENT_PORT = 1024


class HybridVsockForwarder:
    """Accepts on a unix socket; each connection is relayed to guest port `port`."""

    def __init__(self, uds, port=AGENT_PORT):
        self.uds = uds
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="kata-fwd-")
        self.path = os.path.join(self.dir, "agent.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(256)
        self.closed = False
        self.conns = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                guest, _ = hv_connect(self.uds, self.port)
                guest.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, guest]
            for a, b in ((client, guest), (guest, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.closed = True
        self.sock.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.close()
                except OSError:
                    pass
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.rmdir(self.dir)


class GuestAgentClient(ContainerClient):
    """ContainerClient talking to the agent of a running katavm.VM."""

    def __init__(self, vm, timeout=120):
        self.forwarder = HybridVsockForwarder(vm.vsock_uds)
        super().__init__(self.forwarder.path, timeout=timeout)

    def close(self):
        super().close()
        self.forwarder.close()
