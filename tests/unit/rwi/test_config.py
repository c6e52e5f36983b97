"""Configuration: defaults, env overrides, and errors that name the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from rwi.config import load_config, parse_config
from rwi.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def test_the_shipped_example_config_loads() -> None:
    config = load_config(ROOT / "rwi.example.toml", env={})
    assert config.rwi.listen_port == 8080
    assert {t.name for t in config.rwi.tokens} == {"contact-centre-app", "supervisor-desk"}
    support = config.rwi.context("support")
    assert support.no_answer_action == "transfer"
    assert support.no_answer_transfer_target == "sip:1001@local"
    assert config.rwi.context("unknown").no_answer_action == "hangup"
    assert config.database.url == ""
    assert config.sip["allowed_destinations"] == ["127.0.0.0/8"]


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rwi.toml"
    path.write_text('[rwi]\nlisten = "127.0.0.1:9000"\n[database]\nurl = "postgresql://a/b"\n')
    config = load_config(
        path, env={"RWI_LISTEN": "0.0.0.0:9100", "RWI_DATABASE_URL": "postgresql://c/d"}
    )
    assert (config.rwi.listen_host, config.rwi.listen_port) == ("0.0.0.0", 9100)
    assert config.database.url == "postgresql://c/d"
    assert load_config(path, env={"RWI_CONFIG": "ignored"}).rwi.listen_port == 9000
    assert load_config(env={"RWI_CONFIG": str(path)}).rwi.listen_port == 9000
    logs = load_config(path, env={"RWI_LOG_FORMAT": "json", "RWI_LOG_LEVEL": "debug"}).log
    assert (logs.format, logs.level) == ("json", "DEBUG")
    with pytest.raises(ConfigError, match=r"log\.format must be text or json"):
        load_config(path, env={"RWI_LOG_FORMAT": "yaml"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[rwi]\nlisten = 8080\n", "rwi.listen must be a string"),
        ('[rwi]\nlisten = "nohost"\n', "rwi.listen must be host:port"),
        ("[rwi]\nmax_connections = 0\n", "rwi.max_connections must be >= 1"),
        ("[rwi]\nmax_conections = 5\n", "rwi.max_conections is not a known setting"),
        ("[rwi]\norphan_hold_secs = true\n", "rwi.orphan_hold_secs must be"),
        ("[databse]\nurl = ''\n", "<top>.databse is not a known setting"),
        ('[database]\nurl = "mysql://x"\n', "database.url must be a postgresql:// URL"),
        (
            '[[rwi.tokens]]\ntoken = "t"\nscopes = ["call.controll"]\n',
            "unknown scope 'call.controll'",
        ),
        ('[[rwi.tokens]]\ntoken = ""\n', "rwi.tokens[0].token must not be empty"),
        ('[[rwi.tokens]]\ntoken = "t"\ncolour = 1\n', "rwi.tokens[0].colour is not a known"),
        (
            '[[rwi.contexts]]\nname = "s"\nno_answer_action = "explode"\n',
            "rwi.contexts[0].no_answer_action must be one of",
        ),
        (
            '[[rwi.contexts]]\nname = "s"\nno_answer_action = "transfer"\n',
            "no_answer_transfer_target is required",
        ),
        (
            '[[rwi.contexts]]\nname = "s"\nno_answer_action = "transfer"\n'
            'no_answer_transfer_target = "voicemail"\n',
            "no_answer_transfer_target must be a sip:, sips: or tel: URI",
        ),
        (
            '[[rwi.contexts]]\nname = "s"\nno_answer_action = "play_tone"\n'
            "no_answer_tone_hz = 9000\n",
            "no_answer_tone_hz must be <= 4000",
        ),
        ('[log]\nlevel = "LOUD"\n', "log.level must be"),
        ('[log]\nformat = "xml"\n', "log.format must be text or json, got 'xml'"),
        ("[log]\nformat = 1\n", "log.format must be"),
        ("this is = not toml [", "not valid TOML"),
    ],
)
def test_bad_settings_fail_naming_key_and_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", env={})


def test_duplicate_tokens_are_refused() -> None:
    raw = {"rwi": {"tokens": [{"token": "x"}, {"token": "x"}]}}
    with pytest.raises(ConfigError, match="same token twice"):
        parse_config(raw, "f.toml")


def test_the_example_sip_and_media_sections_translate() -> None:
    from rwi.sip_settings import sip_settings

    settings = sip_settings(load_config(ROOT / "rwi.example.toml", env={}))
    assert settings.engine.udp == [("127.0.0.1", 5060)]
    assert settings.engine.tcp == [("127.0.0.1", 5060)]
    assert settings.engine.allowed_destinations == ("127.0.0.0/8",)
    assert settings.engine.users == {"1001": "change-me-1001", "1002": "change-me-1002"}
    assert settings.engine.static_contacts == {"1002": "sip:1002@127.0.0.1:5072"}
    assert settings.engine.trunks["trunk"].proxy == ("127.0.0.1", 5080)
    assert [r.name for r in settings.routes] == ["sales-line", "direct-to-agent"]
    assert settings.header_whitelist == {"x-customer-id"}
    assert settings.media.allowed_destinations == ("127.0.0.0/8",)
    assert (settings.media.port_min, settings.media.port_max) == (20000, 29999)
    assert settings.engine.timers.t1 == 0.5  # RFC 3261's T1 unless [sip] t1_ms says


def test_sip_t1_ms_sets_the_transaction_timers_and_the_request_reply_backstop(
    tmp_path: Path,
) -> None:
    from rwi.service import policy_of
    from rwi.sip_settings import sip_settings

    path = tmp_path / "fast.toml"
    path.write_text("[sip]\nt1_ms = 50\n")
    config = load_config(path, env={})
    assert sip_settings(config).engine.timers.timer_f == pytest.approx(3.2)
    assert policy_of(config).sip_t1_secs == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[sip]\nlisten = ["sctp:1.2.3.4:5"]\n', "sip.listen[0] must be 'udp:HOST:PORT'"),
        ("[sip]\ncolour = 1\n", "sip.colour is not a known setting"),
        ('[[sip.users]]\nname = "a"\npassword = ""\n', "sip.users[0].password must be"),
        ('[[sip.trunks]]\nname = "t"\nproxy = "nohost"\n', "sip.trunks[0].proxy must be HOST:PORT"),
        ("[media]\nport_min = 5\n", "[media]"),
        ("[sip]\nt1_ms = 0\n", "sip.t1_ms must be a number from 10 to 5000"),
        ('[sip]\nt1_ms = "fast"\n', "sip.t1_ms must be a number from 10 to 5000"),
        ('[[routes]]\nmatch_user = "x"\n', "routes[0] needs exactly one of"),
    ],
)
def test_bad_sip_settings_fail_naming_key_and_file(tmp_path: Path, text: str, message: str) -> None:
    from rwi.sip_settings import sip_settings

    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        sip_settings(load_config(path, env={}))
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_queues_and_agents_load_with_defaults() -> None:
    config = load_config(ROOT / "rwi.example.toml", env={})
    (queue,) = config.queues
    assert (queue.name, queue.strategy, queue.members) == (
        "support_queue",
        "longest_idle",
        ("1001", "1002"),
    )
    assert (queue.agent_ring_secs, queue.wrap_up_secs, queue.max_no_answer) == (15, 5, 3)
    assert [(a.id, a.destination, a.skills) for a in config.agents] == [
        ("1001", "sip:1001@local", ("billing", "english")),
        ("1002", "sip:1002@local", ("english",)),
    ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"queues": [{"name": "q", "colour": 1}]}, "queues[0].colour is not a known setting"),
        ({"queues": [{"name": "q", "strategy": "random"}]}, "queues[0].strategy must be one of"),
        ({"queues": [{"name": "q", "music": "../x.wav"}]}, "queues[0].music must be a relative"),
        ({"queues": [{"name": "q"}, {"name": "q"}]}, "the same name twice"),
        ({"agents": [{"id": "1", "skill": ["x"]}]}, "agents[0].skill is not a known setting"),
        ({"agents": [{"id": "1", "destination": "1001"}]}, "agents[0].destination must be"),
        ({"agents": [{"destination": "sip:a@local"}]}, "agents[0].id must not be empty"),
    ],
)
def test_queue_and_agent_errors_name_the_key_and_the_file(
    raw: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "test.toml")
    assert str(info.value).startswith("test.toml: ")
    assert message in str(info.value)
