"""One instance of the scoring component, bounded: a memory limit, and per call a deadline
(wall clock) and fuel (wasm instructions, the same on every machine).

The component is compiled once per process (and cached on disk by wasmtime between processes).
Calls go through `Guest.call`, which sets the call's deadline, converts a trap into `GuestTrap`
and finishes the call (`post_return`). A trapped instance is never called again.
"""

from __future__ import annotations

import math
import threading
from importlib import resources
from typing import Any

import wasmtime
from wasmtime import component

from .errors import GuestTrap

SCORER = "edgescore:scoring/scorer@0.1.0"
ENGINE = "edgescore:scoring/engine@0.1.0"

#: How often the deadline clock ticks.
TICK_SECONDS = 0.01

_lock = threading.Lock()
_compiled: tuple[wasmtime.Engine, component.Component] | None = None


def _ticker(engine: wasmtime.Engine) -> None:
    stop = threading.Event()
    while not stop.wait(TICK_SECONDS):
        engine.increment_epoch()


def compiled() -> tuple[wasmtime.Engine, component.Component]:
    """The engine and the component compiled for it, once per process."""
    global _compiled
    with _lock:
        if _compiled is None:
            config = wasmtime.Config()
            config.epoch_interruption = True
            config.consume_fuel = True
            config.cache = True
            engine = wasmtime.Engine(config)
            wasm = resources.files("edgescore").joinpath("edgescore_scoring.wasm").read_bytes()
            _compiled = (engine, component.Component(engine, wasm))
            threading.Thread(target=_ticker, args=(engine,), daemon=True, name="edgescore-epoch").start()
        return _compiled


class Guest:
    """A fresh instance of the component in a store of its own."""

    def __init__(self, memory_limit_bytes: int, call_timeout_seconds: float, fuel_per_call: int):
        engine, comp = compiled()
        self.store = wasmtime.Store(engine)
        # The component imports wasi:random only; no file, network, clock or environment.
        self.store.set_wasi(wasmtime.WasiConfig())
        self.store.set_limits(memory_size=memory_limit_bytes)
        self._ticks = max(1, math.ceil(call_timeout_seconds / TICK_SECONDS))
        self._fuel = fuel_per_call
        linker = component.Linker(engine)
        linker.add_wasip2()
        self.store.set_epoch_deadline(self._ticks)
        self.store.set_fuel(self._fuel)
        try:
            self._instance = linker.instantiate(self.store, comp)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
            raise GuestTrap(f"the component could not start: {_cause(e)}") from e
        self._funcs: dict[tuple[str, str], component.Func] = {}
        self.trapped: str | None = None

    def _func(self, interface: str, name: str) -> component.Func:
        key = (interface, name)
        if key not in self._funcs:
            parent = self._instance.get_export_index(self.store, interface)
            index = self._instance.get_export_index(self.store, name, parent)
            func = self._instance.get_func(self.store, index) if index else None
            if func is None:
                raise GuestTrap(f"the component exports no {interface}#{name}")
            self._funcs[key] = func
        return self._funcs[key]

    def call(self, interface: str, name: str, *args: Any) -> Any:
        """Calls an export under the deadline; a trap (or running out of time or memory) is
        `GuestTrap`, and this instance is not called again."""
        if self.trapped is not None:
            raise GuestTrap(f"the component's instance trapped earlier: {self.trapped}")
        func = self._func(interface, name)
        self.store.set_epoch_deadline(self._ticks)
        self.store.set_fuel(self._fuel)
        try:
            result = func(self.store, *args)
            func.post_return(self.store)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
            self.trapped = _cause(e)
            raise GuestTrap(f"the component trapped: {self.trapped}") from e
        return result


def _cause(error: Exception) -> str:
    """The line of a wasmtime error that says why (`wasm trap: interrupt`, ...), not the
    backtrace."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in reversed(lines):
        if "trap" in line or "memory" in line or "interrupt" in line:
            return line
    return lines[-1] if lines else type(error).__name__


def field(record: Any, name: str) -> Any:
    """A field of a record the component returned (WIT names are kebab-case)."""
    return getattr(record, name)


def record(**fields: Any) -> component.Record:
    """A record to pass to the component, from snake_case fields."""
    value = component.Record()
    for name, item in fields.items():
        setattr(value, name.replace("_", "-"), item)
    return value
