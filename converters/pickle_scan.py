"""A dry run of a pickle, before the real unpickler sees it: what it would build, without building it.

The pickle's opcodes are parsed with :func:`pickletools.genops` (which never executes anything) and played on a
symbolic machine that tracks only the SHAPE of what the real unpickler would build: one node per object, with the
nodes each container or call result refers to. Nothing is constructed, called, hashed or imported. The dry run
refuses (with a one-line :class:`~converters.errors.ConversionError` or
:class:`~converters.errors.PickleSecurityError`):

* opcodes NVIDIA's pickles never use (``INST``, ``OBJ``, ``EXT*``, out-of-band buffers) and globals outside the
  allow-list (``GLOBAL`` and ``STACK_GLOBAL`` alike);
* more objects, references or container elements than the :class:`~converters.limits.Limits` allow;
* memo indices beyond the limit (the real unpickler's memo is an array: ``LONG_BINPUT 4e9`` would allocate 32 GB);
* dictionary keys / set elements that nest many objects (Python re-hashes a tuple of tuples in full every time,
  so a chain of shared tuples hashes in exponential time) and too much hashing overall;
* a result that is too deep, contains a cycle, or is too large when walked as a tree (a chain of lists that each
  hold the previous one twice is 60 bytes of pickle and 2^30 nodes to a naive walk, ``repr`` or comparison).

Only then does the real (C) unpickler run, on a structure known to be small; the stand-ins it calls count what they
create against the same :class:`~converters.limits.Budget`.
"""

from __future__ import annotations

import io
import pickletools
from typing import Any

from .errors import ConversionError, ConverterError, PickleSecurityError
from .limits import Budget

__all__ = ["FORBIDDEN_OPCODES", "malformed", "refuse_global", "scan"]

# Node kinds. Leaves hold no references; OBJ is anything a call (REDUCE/NEWOBJ/persistent load) returns.
_LEAF, _TUPLE, _LIST, _DICT, _SET, _FROZENSET, _GLOBAL, _OBJ = range(8)

#: Opcodes refused anywhere: NVIDIA's pickles never contain them, and each one instantiates or looks up a
#: class by itself (INST/OBJ) or goes through the copyreg extension registry (EXT*).
FORBIDDEN_OPCODES = {"INST", "OBJ", "EXT1", "EXT2", "EXT4"}
_LEAF_OPCODES = {
    "INT",
    "BININT",
    "BININT1",
    "BININT2",
    "LONG",
    "LONG1",
    "LONG4",
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
    "BINBYTES",
    "SHORT_BINBYTES",
    "BINBYTES8",
    "BYTEARRAY8",
    "UNICODE",
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "FLOAT",
    "BINFLOAT",
    "NONE",
    "NEWTRUE",
    "NEWFALSE",
}
_TEXT_OPCODES = {"UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "STRING", "BINSTRING", "SHORT_BINSTRING"}


class _Machine:
    """The symbolic pickle machine (see the module docstring). Nodes are ints; ``kids[n]`` lists what node ``n``
    refers to (None for a leaf), ``key_cost[n]`` what hashing a tuple node costs."""

    def __init__(self, budget: Budget, allowed: dict, persistent_ok: bool, where: str, refuse: Any):
        self.budget, self.lim, self.refuse = budget, budget.limits, refuse
        self.allowed, self.persistent_ok, self.where = allowed, persistent_ok, where
        self.kind: list[int] = []
        self.kids: list[list[int] | None] = []
        self.key_cost: dict[int, int] = {}
        self.text: dict[int, str] = {}  # short str leaves (STACK_GLOBAL takes its names from the stack)
        self.stack: list[int] = []
        self.marks: list[int] = []  # stack lengths at each MARK (like the C unpickler's mark stack)
        self.memo: dict[int, int] = {}

    # ---------------------------------------------------------------------------------------------- building

    def new(self, kind: int, kids: list[int] | None = None) -> int:
        self.budget.objects += 1
        if self.budget.objects > self.lim.max_objects:
            raise self.budget.refuse(f"it builds more than {self.lim.max_objects:,} objects")
        self.kind.append(kind)
        self.kids.append(kids)
        if kids:
            self.add_items(len(kids), len(kids))
        return len(self.kind) - 1

    def add_items(self, n: int, length: int) -> None:
        if length > self.lim.max_container_len:
            raise self.budget.refuse(f"one of its containers holds more than {self.lim.max_container_len:,} items")
        self.budget.spend_items(n, "it refers to shared objects too many times")

    def hashed(self, node: int) -> None:
        cost = self.key_cost.get(node, 1)
        if cost > self.lim.max_key_nodes:
            raise self.budget.refuse(
                f"a dictionary key or set element nests more than {self.lim.max_key_nodes:,} "
                "objects (hashing it would take exponential time)"
            )
        self.budget.hash_work += cost
        if self.budget.hash_work > self.lim.max_hash_work:
            raise self.budget.refuse(f"hashing its keys would visit more than {self.lim.max_hash_work:,} objects")

    def malformed(self, what: str) -> ConversionError:
        return ConversionError(f"{self.where} is not a valid pickle ({what})")

    # ---------------------------------------------------------------------------------------------- the stack

    def fence(self) -> int:
        return self.marks[-1] if self.marks else 0

    def pop(self) -> int:
        if len(self.stack) <= self.fence():
            raise self.malformed("stack underflow")
        return self.stack.pop()

    def top(self) -> int:
        if len(self.stack) <= self.fence():
            raise self.malformed("stack underflow")
        return self.stack[-1]

    def pop_mark(self) -> list[int]:
        if not self.marks:
            raise self.malformed("no MARK on the stack")
        i = self.marks.pop()
        items = self.stack[i:]
        del self.stack[i:]
        return items

    def push(self, node: int) -> None:
        self.stack.append(node)

    def target(self, kinds: tuple[int, ...], op: str) -> int:
        node = self.top()
        if self.kind[node] not in kinds:
            raise self.malformed(f"{op} applied to an object that cannot take it")
        return node

    def extend(self, node: int, items: list[int]) -> None:
        kids = self.kids[node]
        assert kids is not None
        kids.extend(items)
        self.add_items(len(items), len(kids))

    def tuple_node(self, items: list[int]) -> int:
        node = self.new(_TUPLE, items)
        cost = 1
        for item in items:
            cost += self.key_cost.get(item, 1)
            if cost > self.lim.max_key_nodes:  # capped: only "too much" matters
                break
        if cost > 1:
            self.key_cost[node] = cost
        return node

    def check_global(self, module: str, name: str) -> None:
        if (module, name) not in self.allowed:
            raise self.refuse(module, name, self.where)

    # ---------------------------------------------------------------------------------------------- one opcode

    def step(self, name: str, arg: Any) -> bool:
        """Play one opcode; True at STOP."""
        if name in _LEAF_OPCODES:
            node = self.new(_LEAF)
            if name in _TEXT_OPCODES and isinstance(arg, (str, bytes)) and len(arg) <= 200:
                self.text[node] = arg if isinstance(arg, str) else arg.decode("latin-1")
            self.push(node)
        elif name in FORBIDDEN_OPCODES:
            detail = f" ({arg.replace(' ', '.')[:120]})" if isinstance(arg, str) else ""
            raise PickleSecurityError(
                f"refusing pickle opcode {name}{detail} in {self.where}: NVIDIA's pickles "
                "never use it. Nothing from the file was executed."
            )
        elif name == "MARK":
            self.marks.append(len(self.stack))
        elif name in ("PROTO", "FRAME", "READONLY_BUFFER"):
            pass
        elif name == "STOP":
            return True
        elif name == "NEXT_BUFFER":
            raise ConversionError(f"{self.where} refers to out-of-band buffers, which model pickles never use")
        elif name == "EMPTY_TUPLE":
            self.push(self.tuple_node([]))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = [self.pop() for _ in range(n)][::-1]
            self.push(self.tuple_node(items))
        elif name == "TUPLE":
            self.push(self.tuple_node(self.pop_mark()))
        elif name == "EMPTY_LIST":
            self.push(self.new(_LIST, []))
        elif name == "LIST":
            self.push(self.new(_LIST, self.pop_mark()))
        elif name == "EMPTY_DICT":
            self.push(self.new(_DICT, []))
        elif name == "EMPTY_SET":
            self.push(self.new(_SET, []))
        elif name in ("DICT", "FROZENSET"):
            items = self.pop_mark()
            if name == "DICT" and len(items) % 2:
                raise self.malformed("odd number of items for a dict")
            for key in items[::2] if name == "DICT" else items:
                self.hashed(key)
            self.push(self.new(_DICT if name == "DICT" else _FROZENSET, items))
        elif name == "APPEND":
            value = self.pop()
            self.extend(self.target((_LIST, _OBJ), name), [value])
        elif name == "APPENDS":
            items = self.pop_mark()
            self.extend(self.target((_LIST, _OBJ), name), items)
        elif name == "SETITEM":
            value, key = self.pop(), self.pop()
            self.hashed(key)
            self.extend(self.target((_DICT, _OBJ), name), [key, value])
        elif name == "SETITEMS":
            items = self.pop_mark()
            if len(items) % 2:
                raise self.malformed("odd number of items for SETITEMS")
            for key in items[::2]:
                self.hashed(key)
            self.extend(self.target((_DICT, _OBJ), name), items)
        elif name == "ADDITEMS":
            items = self.pop_mark()
            for item in items:
                self.hashed(item)
            self.extend(self.target((_SET, _OBJ), name), items)
        elif name == "POP":
            if self.marks and self.marks[-1] == len(self.stack):
                self.marks.pop()
            else:
                self.pop()
        elif name == "POP_MARK":
            self.pop_mark()
        elif name == "DUP":
            self.push(self.top())
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            if arg not in self.memo:
                raise self.malformed(f"memo key {short_index(arg)} is read before it is written")
            self.push(self.memo[arg])
        elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            index = len(self.memo) if name == "MEMOIZE" else arg
            if not isinstance(index, int) or index < 0 or index > self.lim.max_memo:
                raise self.budget.refuse(
                    f"it uses memo index {short_index(index)} (the limit is "
                    f"{self.lim.max_memo:,}; each index reserves memory up to it)"
                )
            self.memo[index] = self.top()
        elif name == "GLOBAL":
            module, _, gname = str(arg).partition(" ")
            self.check_global(module, gname)
            self.push(self.new(_GLOBAL))
        elif name == "STACK_GLOBAL":
            gname, module = self.pop(), self.pop()
            if module not in self.text or gname not in self.text:
                raise PickleSecurityError(f"refusing a global in {self.where} whose name is not a short string")
            self.check_global(self.text[module], self.text[gname])
            self.push(self.new(_GLOBAL))
        elif name == "REDUCE":
            args, func = self.pop(), self.pop()
            if self.kind[func] != _GLOBAL:
                raise self.malformed("REDUCE calls something that is not an allowed global")
            if self.kind[args] != _TUPLE:
                raise self.malformed("REDUCE arguments are not a tuple")
            self.push(self.new(_OBJ, [args]))
        elif name == "NEWOBJ":
            args, cls = self.pop(), self.pop()
            if self.kind[cls] != _GLOBAL or self.kind[args] != _TUPLE:
                raise self.malformed("NEWOBJ needs an allowed class and an argument tuple")
            self.push(self.new(_OBJ, [args]))
        elif name == "NEWOBJ_EX":
            kwargs, args, cls = self.pop(), self.pop(), self.pop()
            if self.kind[cls] != _GLOBAL or self.kind[args] != _TUPLE or self.kind[kwargs] != _DICT:
                raise self.malformed("NEWOBJ_EX needs an allowed class, an argument tuple and a keyword dict")
            self.push(self.new(_OBJ, [args, kwargs]))
        elif name == "BUILD":
            state = self.pop()
            self.extend(self.target((_OBJ,), name), [state])
        elif name in ("PERSID", "BINPERSID"):
            if not self.persistent_ok:
                raise PickleSecurityError(f"refusing a persistent id (opcode {name}) in {self.where}")
            pid = self.pop() if name == "BINPERSID" else self.new(_LEAF)
            self.push(self.new(_OBJ, [pid]))
        else:  # an opcode added to pickle after this was written
            raise PickleSecurityError(f"refusing unknown pickle opcode {name} in {self.where}")
        return False

    # ---------------------------------------------------------------------------------------------- the result

    def check_result(self, root: int) -> None:
        """Depth, cycles and tree size of what the pickle returns, in one iterative pass over the DAG."""
        lim = self.lim
        size: dict[int, int] = {}
        depth: dict[int, int] = {}
        on_path: set[int] = set()
        todo: list[tuple[int, bool]] = [(root, False)]
        while todo:
            node, done = todo.pop()
            if done:
                on_path.discard(node)
                kids = self.kids[node] or ()
                s, d = 1, 0
                for k in kids:
                    s += size[k]
                    d = max(d, depth[k])
                    if s > lim.max_tree_nodes:
                        break
                size[node], depth[node] = min(s, lim.max_tree_nodes + 1), d + 1
                if depth[node] > lim.max_depth:
                    raise self.budget.refuse(f"its objects nest more than {lim.max_depth} deep")
                if size[node] > lim.max_tree_nodes:
                    raise self.budget.refuse(
                        f"its objects, walked as a tree, number more than {lim.max_tree_nodes:,} (shared "
                        "references that multiply at every level?)"
                    )
                continue
            if node in size:
                continue
            if node in on_path:
                raise self.budget.refuse("its objects refer to themselves (a cycle); network pickles never do")
            on_path.add(node)
            todo.append((node, True))
            for k in self.kids[node] or ():
                if k in on_path:
                    raise self.budget.refuse("its objects refer to themselves (a cycle); network pickles never do")
                if k not in size:
                    todo.append((k, False))
            if len(on_path) > lim.max_depth + 1:
                raise self.budget.refuse(f"its objects nest more than {lim.max_depth} deep")


def refuse_global(
    module: str,
    name: str,
    where: str,
    allowed: str = "only NVIDIA network-pickle contents (tensors, numpy arrays, network states) are allowed",
) -> PickleSecurityError:
    """The error for a global outside the allow-list (its name printable and cut short; ``allowed`` says what
    the format may hold)."""
    dotted = f"{module}.{name}"
    if not dotted.isprintable():
        dotted = repr(dotted)[1:-1]
    if len(dotted) > 120:
        dotted = dotted[:117] + "..."
    return PickleSecurityError(
        f"refusing to load '{dotted}' from {where}: {allowed}. Nothing from the file was executed."
    )


def malformed(exc: BaseException, where: str) -> ConversionError:
    """The one-line error for a pickle the parser or unpickler rejects (``exc``'s own message, cut short)."""
    msg = str(exc)
    if len(msg) > 200:
        msg = msg[:197] + "..."
    if isinstance(exc, EOFError) or any(
        hint in msg for hint in ("exhausted", "truncated", "not enough data", "remain", "no newline")
    ):
        return ConversionError(f"{where} is truncated or corrupt ({type(exc).__name__}: {msg})")
    if isinstance(exc, MemoryError):
        return ConversionError(f"{where} needs more memory than is available to load; refused")
    return ConversionError(f"{where} is not a valid pickle ({type(exc).__name__}: {msg})")


def short_index(value: Any) -> str:
    return str(value) if isinstance(value, int) and value.bit_length() <= 64 else "<huge>"


def scan(
    stream: io.BytesIO, *, budget: Budget, allowed: dict, persistent_ok: bool, where: str, refuse: Any = None
) -> None:
    """Dry-run one pickle from the stream's position to its STOP (see the module docstring); leaves the stream just
    after STOP. Raises :class:`ConversionError` / :class:`PickleSecurityError` (``refuse(module, name, where)`` for
    a global off the allow-list; default :func:`refuse_global`); nothing is executed."""
    m = _Machine(budget, allowed, persistent_ok, where, refuse or refuse_global)
    start = stream.tell()
    end = stream.seek(0, io.SEEK_END)  # (not getbuffer(): that would copy a BytesIO sharing its bytes)
    stream.seek(start)
    try:
        for i, (op, arg, pos) in enumerate(pickletools.genops(stream)):
            if not i & 1023:
                budget.check_time()
            if op.name == "FRAME" and arg > end - pos - 9:
                raise ConversionError(
                    f"{where} is truncated or corrupt (a frame of {short_index(arg)} bytes, {end - pos - 9} left)"
                )
            if m.step(op.name, arg):
                if not m.stack:
                    raise m.malformed("nothing on the stack at STOP")
                m.check_result(m.stack[-1])
                return
    except ConverterError:
        raise
    except RecursionError:  # pragma: no cover - nothing here recurses
        raise ConversionError(f"{where} is nested too deeply") from None
    except Exception as exc:  # genops: ValueError on an unknown opcode, truncated data, bad text numbers, ...
        raise malformed(exc, where) from None
    raise ConversionError(f"{where} is truncated or corrupt (no STOP opcode)")
