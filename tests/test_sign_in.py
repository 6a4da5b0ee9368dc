"""The app's password gate: each failure doubles the wait before the next attempt is judged."""

from seqgan_music.sign_in import PasswordGate


def test_each_failure_doubles_the_wait_up_to_30_s_and_the_password_resets_it():
    slept = []
    gate = PasswordGate("s3cret", sleep=slept.append)
    assert [gate.attempt("guess") for _ in range(8)] == [False] * 8
    assert slept == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert gate.attempt("s3cret") and gate.delay() == 0.0
    assert not gate.attempt("s3cret ") and gate.delay() == 1.0
