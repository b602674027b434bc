"""ExecProcess and terminal calls on a ContainerClient (host agent or GuestAgentClient).

    exec_process(c, "c1", "e1", ["/bin/sh"], terminal=True, console=(30, 100))
    resize(c, "c1", "e1", 40, 120)
    code, out, err = exec_run(c, "c1", "e2", ["/bin/true"])
"""
import copy
import threading


def exec_process(c, cid, exec_id, args, env=None, cwd="/", terminal=False, console=None, user=None,
                 string_user=None, process=None, timeout=None):
    proc = {"Args": list(args), "Env": list(env or ["PATH=/bin:/sbin:/usr/bin:/usr/sbin"]), "Cwd": cwd,
            "Terminal": terminal}
    if console:
        proc["ConsoleSize"] = {"Height": console[0], "Width": console[1]}
    if user:
        proc["User"] = user
    proc.update(copy.deepcopy(process or {}))
    req = {"container_id": cid, "exec_id": exec_id, "process": proc}
    if string_user:
        req["string_user"] = string_user
    return c.call("ExecProcess", c.json_format.ParseDict(req, c.pb.ExecProcessRequest()), timeout)


def resize(c, cid, exec_id, rows, cols):
    return c.call("TtyWinResize", c.pb.TtyWinResizeRequest(container_id=cid, exec_id=exec_id, row=rows,
                                                            column=cols))


def exec_run(c, cid, exec_id, args, stdin=None, **kw):
    """Exec, feed stdin (then close it), read stdout and stderr to their end, wait.
    Returns (exit code, stdout bytes, stderr bytes)."""
    exec_process(c, cid, exec_id, args, **kw)
    err = {}
    t = threading.Thread(target=lambda: err.setdefault("data", c.read_all(cid, "stderr", exec_id=exec_id)))
    t.start()
    if stdin is not None:
        if stdin:
            c.write_stdin(cid, stdin, exec_id=exec_id)
        c.close_stdin(cid, exec_id=exec_id)
    out = c.read_all(cid, exec_id=exec_id)
    t.join()
    code = c.wait(cid, exec_id=exec_id)
    return code, out, err.get("data", b"")


def read_until(c, cid, exec_id, needle, limit=200):
    """Reads the exec's stdout until needle (bytes) shows up; returns what was read."""
    out = bytearray()
    for _ in range(limit):
        d = c.read(cid, exec_id=exec_id)
        if not d:
            break
        out += d
        if needle in out:
            return bytes(out)
    raise AssertionError(f"{needle!r} never came; got {bytes(out)!r}")
