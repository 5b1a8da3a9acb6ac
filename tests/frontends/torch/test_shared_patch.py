"""SharedPatch: installed by the first trace, restored by the last; other threads pass through."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from modelmeter.frontends.torch.shared_patch import SharedPatch


def test_first_installs_last_restores_and_only_tracing_threads_divert() -> None:
    def original() -> str:
        return "original"

    owner = SimpleNamespace(f=original)
    patch = SharedPatch(owner, "f", lambda: "diverted" if patch.tracing else patch.saved())
    seen: list[str] = []
    inside, leave = threading.Event(), threading.Event()

    def other() -> None:  # a thread that is not tracing while this one is
        inside.wait()
        seen.append(owner.f())
        leave.set()

    t = threading.Thread(target=other)
    t.start()
    with patch.installed():
        with patch.installed():  # nested: still installed after the inner block
            pass
        seen.append(owner.f())
        inside.set()
        leave.wait()
    t.join()
    assert seen == ["diverted", "original"]  # this thread diverted, the other passed through
    assert owner.f is original and not patch.tracing
