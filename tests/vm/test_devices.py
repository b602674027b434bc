"""Device access control in the guest: the BPF_PROG_TYPE_CGROUP_DEVICE program the agent
compiles from the spec's device rules (or its default allow list), attached to each
container's cgroup and replaced in place on UpdateContainer. Every check is a system call
made inside a container by cg-probe, which prints which call failed and with what errno."""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from katatest.cgroup_guest import ALL_CAPS, Guest  # noqa: E402

MiB = 1 << 20


def make_disk(test, size=8 * MiB):
    fd, path = tempfile.mkstemp(prefix="dev-disk-", suffix=".img")
    os.close(fd)
    test.addCleanup(os.unlink, path)
    with open(path, "r+b") as f:
        f.truncate(size)
    return path


def lines(out):
    return [l for l in out.splitlines() if l]


class DeviceRules(unittest.TestCase):
    def test_default_rules_a_guest_disk_node_can_be_made_but_not_opened(self):
        g = Guest(self, disks=[make_disk(self)])
        dev = g.guest_file("/sys/block/vda/dev")
        major, minor = dev.split(":")
        # No device rules in the spec (the Kata runtime strips them): the default list.
        status, out = g.run("probe", ["cg-probe", "dev",
                                      "mknod", "/dev/guest-disk", "b", major, minor,
                                      "open", "/dev/guest-disk", "r",
                                      "open", "/dev/guest-disk", "rw",
                                      "open", "/dev/null", "rw",
                                      "read", "/dev/zero",
                                      "read", "/dev/urandom"], caps=ALL_CAPS)
        self.assertEqual(status, 0, out)
        self.assertEqual(lines(out), [
            "mknod /dev/guest-disk: ok",        # CAP_MKNOD and "allow b *:* m"
            "open /dev/guest-disk: EPERM",      # the device program: not on the list
            "open /dev/guest-disk: EPERM",
            "open /dev/null: ok",
            "read /dev/zero: ok",
            "read /dev/urandom: ok",
        ])
        # The same with a rule that allows everything: the EPERM above was the program's.
        status, out = g.run("probe-all", ["cg-probe", "dev", "mknod", "/dev/guest-disk", "b", major, minor,
                                          "open", "/dev/guest-disk", "r"],
                            caps=ALL_CAPS, resources={"Devices": [{"Allow": True, "Access": "rwm"}]})
        self.assertEqual(lines(out), ["mknod /dev/guest-disk: ok", "open /dev/guest-disk: ok"])

    def test_spec_devices_are_allowed_by_default(self):
        g = Guest(self, disks=[make_disk(self)])
        major, minor = g.guest_file("/sys/block/vda/dev").split(":")
        # The spec gives the container the disk as /dev/xvda: then it may open it.
        devices = [{"Path": "/dev/xvda", "Type": "b", "Major": int(major), "Minor": int(minor),
                    "FileMode": 0o660}]
        status, out = g.run("probe", ["cg-probe", "dev", "read", "/dev/xvda", "open", "/dev/xvda", "rw"],
                            devices=devices)
        self.assertEqual(lines(out), ["read /dev/xvda: ok", "open /dev/xvda: ok"])

    def test_deny_all_allow_null(self):
        g = Guest(self)
        rules = [{"Allow": False, "Access": "rwm"},
                 {"Allow": True, "Type": "c", "Major": 1, "Minor": 3, "Access": "rwm"}]
        status, out = g.run("probe", ["cg-probe", "dev", "open", "/dev/zero", "r",
                                      "open", "/dev/null", "rw", "open", "/dev/full", "w"],
                            resources={"Devices": rules})
        self.assertEqual(status, 0, out)
        self.assertEqual(lines(out), ["open /dev/zero: EPERM", "open /dev/null: ok",
                                      "open /dev/full: EPERM"])

    def test_update_adds_a_rule_without_restarting(self):
        g = Guest(self)
        rules = [{"Allow": False, "Access": "rwm"},
                 {"Allow": True, "Type": "c", "Major": 1, "Minor": 3, "Access": "rwm"}]
        # One probe per line of stdin: the same process before and after the update.
        script = "while read x; do cg-probe dev read /dev/zero open /dev/null rw; echo done; done"
        g.create("c1", ["sh", "-c", script], resources={"Devices": rules})
        g.start("c1")
        g.call("WriteStdin", {"container_id": "c1", "exec_id": "c1", "data": "MQo="})
        out = g.read_until("c1", "done")
        self.assertEqual(lines(out), ["open /dev/zero: EPERM", "open /dev/null: ok", "done"])

        g.call("UpdateContainer", {"container_id": "c1", "resources": {"Devices": [
            {"Allow": True, "Type": "c", "Major": 1, "Minor": 5, "Access": "rwm"}]}})
        g.call("WriteStdin", {"container_id": "c1", "exec_id": "c1", "data": "Mgo="})
        out = g.read_until("c1", "done")
        self.assertEqual(lines(out), ["read /dev/zero: ok", "open /dev/null: ok", "done"])
        # Replaced in place: one program on the cgroup, never two, never none.
        self.assertIn('"device_programs":1', g.vm.console_text())

        # A whole new list that starts with "deny all" takes everything else away again.
        g.call("UpdateContainer", {"container_id": "c1", "resources": {"Devices": [
            {"Allow": False, "Access": "rwm"}]}})
        g.call("WriteStdin", {"container_id": "c1", "exec_id": "c1", "data": "Mwo="})
        out = g.read_until("c1", "done")
        self.assertEqual(lines(out), ["open /dev/zero: EPERM", "open /dev/null: EPERM", "done"])
        g.remove("c1")


if __name__ == "__main__":
    unittest.main(verbosity=2)
