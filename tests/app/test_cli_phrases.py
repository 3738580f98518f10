"""`stylesteer generate --ban / --bias / --ban-ignore-case`: bad values, and a ban that acts."""

from __future__ import annotations

import json

import pytest

from app.main import main


@pytest.mark.parametrize("argv, message", [
    (["--bias", " suddenly"], "no '='"),
    (["--bias", " suddenly=often"], "must be a number"),
    (["--bias", " suddenly=-101"], "between -100 and 100"),
    (["--bias", " suddenly=250"], "between -100 and 100"),
    (["--bias", "=3"], "cannot be empty"),
    (["--ban", ""], "cannot be empty"),
    (["--ban", "   "], "only whitespace"),
])
def test_bad_phrase_rules_exit_2_with_one_line(capsys, argv, message):
    # Refused before any model loads: the model named here does not exist.
    assert main(["generate", "--model", "/no/such/model.gguf", *argv, "hello"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stylesteer: error:") and message in err[0]


@pytest.mark.model
def test_ban_acts_and_flags_the_token(capsys):
    prompt = "She had shivers down her spine, and suddenly the door slammed. They had shivers"
    argv = ["generate", "--model", "demo", "--json", "--greedy", "--repetition-penalty", "1", "--max-new-tokens", "2"]
    assert main([*argv, prompt]) == 0
    free = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert free[0]["text"] == " down" and not free[0]["adjusted"]
    assert main([*argv, "--ban", "SHIVERS DOWN", "--ban-ignore-case", "--bias", " suddenly=-5", prompt]) == 0
    banned = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert banned[0]["text"] != " down" and banned[0]["adjusted"]
    assert "shivers down" not in ("shivers" + banned[-1]["summary"]["text"]).lower()
