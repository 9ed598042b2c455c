"""Password checks run off the event loop, one at a time per process, at a lower CPU priority, so logins
(argon2id: ~30 ms of CPU each) cannot take the CPU the tills' requests need."""

from __future__ import annotations

import asyncio
import os
import threading

from giftledger.auth import passwords


def test_checks_give_the_same_answers_off_the_event_loop() -> None:
    stored = passwords.hash_password("correct horse")

    async def check() -> list[bool]:
        return list(
            await asyncio.gather(
                passwords.check_password(stored, "correct horse"),
                passwords.check_password(stored, "wrong horse"),
                passwords.check_password(None, "correct horse"),  # an unknown user: refused, after a real check
                passwords.check_password("not-a-hash", "correct horse"),
            )
        )

    assert asyncio.run(check()) == [True, False, False, False]


def test_the_event_loop_keeps_running_while_a_password_is_checked() -> None:
    stored = passwords.hash_password("correct horse")

    async def ticks_during_check() -> tuple[int, bool]:
        ticks = 0
        check = asyncio.ensure_future(passwords.check_password(stored, "correct horse"))
        while not check.done():
            ticks += 1
            await asyncio.sleep(0.001)
        return ticks, check.result()

    ticks, ok = asyncio.run(ticks_during_check())
    assert ok is True
    assert ticks >= 3  # the loop ran between the check's start and its end


def test_checks_run_in_one_thread_at_a_lower_priority() -> None:
    asyncio.run(passwords.check_password(None, "x"))
    hashing = [t for t in threading.enumerate() if t.name.startswith("giftledger-argon2")]
    assert len(hashing) == 1
    ours = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert os.getpriority(os.PRIO_PROCESS, hashing[0].native_id) == min(19, ours + passwords.HASHING_NICENESS)
    assert passwords.HASHING_NICENESS == 19  # the lowest priority there is
