"""lsd_jax.memory: the free memory a render may use (machine, container, address-space limit) and the peak bytes of
a traced computation (issue 18: a batch that does not fit is refused before XLA compiles it)."""

from __future__ import annotations

import resource

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lsd_jax import memory

N = 1000  # float32 elements: 4000 bytes per array


def test_peak_bytes_of_a_chain_frees_what_is_no_longer_read():
    def chain(x):
        a = x * 2.0  # 4N alive
        b = a + 1.0  # 8N: a is read here for the last time
        return (b * b).sum()  # b and b*b: 8N again

    assert memory.peak_bytes(jax.make_jaxpr(chain)(jnp.zeros(N))) == 8 * N


def test_peak_bytes_counts_values_alive_together_and_nested_jaxprs():
    def together(x):
        return jnp.sin(x) * jnp.cos(x)  # sin, cos and their product alive at once: 12N

    assert memory.peak_bytes(jax.make_jaxpr(together)(jnp.zeros(N))) == 12 * N
    nested = jax.jit(together)
    # the outer program holds nothing else while the inner one runs: the inner peak, its output included
    assert memory.peak_bytes(jax.make_jaxpr(lambda x: nested(x).sum())(jnp.zeros(N))) == 12 * N
    # inputs are not counted; an unused result is freed at once
    assert memory.peak_bytes(jax.make_jaxpr(lambda x, y: (x * 3.0, y))(jnp.zeros(N), jnp.zeros(10 * N))) == 4 * N


def test_tree_bytes():
    tree = {"a": np.zeros((3, 4), np.float32), "b": [jax.ShapeDtypeStruct((5,), jnp.bfloat16), None]}
    assert memory.tree_bytes(tree) == 48 + 10


def test_address_space_limit_is_a_budget(monkeypatch):
    size = memory._meminfo("VmSize", memory._read("/proc/self/status"))
    assert size is not None and size > 0
    limit = size + (256 << 20)
    monkeypatch.setattr(memory.resource, "getrlimit", lambda which: (limit, resource.RLIM_INFINITY))
    budget = memory.free_memory()
    assert budget is not None and "address-space limit" in budget.where
    assert 0 < budget.bytes <= 256 << 20 and budget.bytes > 128 << 20  # less what this process grew by since


@pytest.mark.parametrize(
    "files, expected",
    [
        (
            {
                "/sys/fs/cgroup/memory.max": "2147483648\n",
                "/sys/fs/cgroup/memory.current": "1610612736\n",
                "/sys/fs/cgroup/memory.stat": "anon 1\ninactive_file 536870912\n",
            },
            1 << 30,
        ),  # page cache counts as free
        ({"/sys/fs/cgroup/memory.max": "max\n", "/sys/fs/cgroup/memory.current": "5\n"}, None),
        (
            {
                "/sys/fs/cgroup/memory/memory.limit_in_bytes": str(1 << 62),
                "/sys/fs/cgroup/memory/memory.usage_in_bytes": "1",
            },
            None,
        ),  # v1's "unlimited"
        (
            {
                "/sys/fs/cgroup/memory/memory.limit_in_bytes": "1000",
                "/sys/fs/cgroup/memory/memory.usage_in_bytes": "1200",
            },
            0,
        ),
    ],
)
def test_container_limit(monkeypatch, files, expected):
    monkeypatch.setattr(memory, "_read", lambda path: files.get(path))
    assert memory._cgroup_free() == expected


def test_the_smallest_budget_wins(monkeypatch):
    files = {
        "/proc/meminfo": "MemTotal: 9000000 kB\nMemAvailable:    4000000 kB\n",
        "/sys/fs/cgroup/memory.max": str(3 << 30),
        "/sys/fs/cgroup/memory.current": str(1 << 30),
    }
    monkeypatch.setattr(memory, "_read", lambda path: files.get(path))
    monkeypatch.setattr(memory.resource, "getrlimit", lambda which: (resource.RLIM_INFINITY,) * 2)
    assert memory.free_memory() == memory.Budget(2 << 30, "in this container")
    files["/sys/fs/cgroup/memory.max"] = "max"
    assert memory.free_memory() == memory.Budget(4000000 * 1024, "on this machine")


def test_human_bytes():
    assert memory.human_bytes(0) == "0 bytes" and memory.human_bytes(1023) == "1023 bytes"
    assert memory.human_bytes(1536) == "1.5 KB" and memory.human_bytes(3 << 20) == "3.0 MB"
    assert memory.human_bytes(5 << 30) == "5.0 GB" and memory.human_bytes(2 << 40) == "2.0 TB"
    assert memory.human_bytes(3 << 50) == "3072.0 TB"  # the largest unit grows
