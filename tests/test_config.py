"""Settings: precedence, every error path, and the key never shown."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tui.config import ConfigError, Settings, load_settings

KEY = "sk-test-DO-NOT-LEAK-4242"


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_use_user_data_dir(isolated_user_dirs):
    s = load_settings(env={})
    assert s.database_url.startswith("sqlite+aiosqlite:///")
    assert s.database_url.endswith("chrysopedia/chrysopedia.db")
    assert str(isolated_user_dirs) in s.database_url
    assert s.redis_url is None
    assert not s.model_configured


def test_precedence_file_env_flags(tmp_path):
    cfg = write(tmp_path / "c.toml", 'llm_model = "from-file"\nredis_url = "redis://file:6379"\n'
                'database_url = "sqlite:///file.db"\n')
    s = load_settings(config_file=cfg, env={})
    assert (s.llm_model, s.redis_url) == ("from-file", "redis://file:6379")
    assert s.database_url == "sqlite+aiosqlite:///file.db"
    assert s.sources["llm_model"] == str(cfg)

    env = {"CHRYSOPEDIA_LLM_MODEL": "from-env", "CHRYSOPEDIA_REDIS_URL": "redis://env:6379"}
    s = load_settings(config_file=cfg, env=env)
    assert (s.llm_model, s.redis_url) == ("from-env", "redis://env:6379")
    assert s.sources["llm_model"] == "$CHRYSOPEDIA_LLM_MODEL"

    s = load_settings(config_file=cfg, env=env, flags={"redis": "redis://flag:1", "db": "sqlite:///f.db"})
    assert s.redis_url == "redis://flag:1"
    assert s.database_url == "sqlite+aiosqlite:///f.db"
    assert s.sources["redis_url"] == "--redis"


def test_default_config_location_is_read(isolated_user_dirs):
    cfg_dir = isolated_user_dirs / ".config" / "chrysopedia"
    cfg_dir.mkdir(parents=True)
    write(cfg_dir / "config.toml", 'llm_model = "dflt"\n[keymap]\nfocus_sources = "ctrl+s"\n')
    s = load_settings()
    assert s.llm_model == "dflt"
    assert s.keymap == {"focus_sources": "ctrl+s"}


def test_openai_aliases_have_lower_precedence():
    s = load_settings(env={"OPENAI_API_KEY": "a", "OPENAI_BASE_URL": "http://o:1/v1"})
    assert (s.llm_api_key, s.llm_api_url) == ("a", "http://o:1/v1")
    s = load_settings(env={"OPENAI_API_KEY": "a", "CHRYSOPEDIA_LLM_API_KEY": "b",
                           "OPENAI_BASE_URL": "http://o:1/v1", "CHRYSOPEDIA_LLM_API_URL": "http://c:2/v1"})
    assert (s.llm_api_key, s.llm_api_url) == ("b", "http://c:2/v1")
    assert s.model_configured


def test_postgres_url_is_normalised():
    s = load_settings(env={"CHRYSOPEDIA_DATABASE_URL": "postgresql://u@h:5432/db"})
    assert s.database_url == "postgresql+asyncpg://u@h:5432/db"


@pytest.mark.parametrize(
    "env, setting, fragment",
    [
        ({"CHRYSOPEDIA_REDIS_URL": "http://x"}, "redis_url", "redis://"),
        ({"CHRYSOPEDIA_REDIS_URL": "redis://h:notaport"}, "redis_url", "malformed URL"),
        ({"CHRYSOPEDIA_DATABASE_URL": "mysql://x/y"}, "database_url", "sqlite:///"),
        ({"CHRYSOPEDIA_LLM_API_URL": "localhost:8080"}, "llm_api_url", "http(s)://"),
        ({"OPENAI_BASE_URL": "ftp://x"}, "llm_api_url", "$OPENAI_BASE_URL"),
        ({"CHRYSOPEDIA_LLM_FIRST_TOKEN_TIMEOUT": "soon"}, "llm_first_token_timeout", "number"),
        ({"CHRYSOPEDIA_LLM_CONNECT_TIMEOUT": "-1"}, "llm_connect_timeout", "positive"),
    ],
)
def test_bad_env_values_name_setting_and_source(env, setting, fragment):
    with pytest.raises(ConfigError) as err:
        load_settings(env=env)
    assert err.value.setting == setting
    assert fragment in str(err.value)
    assert "$" in err.value.source


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(config_file=tmp_path / "nope.toml", env={})
    bad = write(tmp_path / "bad.toml", "llm_model = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config_file=bad, env={})
    unknown = write(tmp_path / "unknown.toml", 'llm_modle = "x"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(config_file=unknown, env={})
    assert err.value.setting == "llm_modle" and "unknown setting" in str(err.value)
    wrong = write(tmp_path / "wrong.toml", "llm_model = 3\n")
    with pytest.raises(ConfigError, match="expected a string"):
        load_settings(config_file=wrong, env={})
    keymap = write(tmp_path / "km.toml", "keymap = 3\n")
    with pytest.raises(ConfigError, match="keymap"):
        load_settings(config_file=keymap, env={})
    unreadable = tmp_path / "dir.toml"
    unreadable.mkdir()
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(config_file=unreadable, env={})


def test_key_never_in_repr_or_public_items():
    s = load_settings(env={"CHRYSOPEDIA_LLM_API_KEY": KEY,
                           "CHRYSOPEDIA_REDIS_URL": "redis://:hunter2@h:6379"})
    assert KEY not in repr(s) and KEY not in str(s)
    shown = " ".join(" ".join(row) for row in s.public_items())
    assert KEY not in shown and "(set)" in shown
    assert "hunter2" not in shown


def run_cli(*args, env=None):
    import os

    full_env = {k: v for k, v in os.environ.items()}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "tui", *args], capture_output=True, text=True,
                          env=full_env, timeout=120)


def test_cli_bad_config_is_one_line_exit_2(tmp_path):
    r = run_cli("--config", str(tmp_path / "missing.toml"), "config")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "config file" in r.stderr and "--config" in r.stderr
    r = run_cli("stats", env={"CHRYSOPEDIA_REDIS_URL": "nope://"})
    assert r.returncode == 2 and "redis_url" in r.stderr and "CHRYSOPEDIA_REDIS_URL" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_config_output_hides_key():
    r = run_cli("config", env={"CHRYSOPEDIA_LLM_API_KEY": KEY})
    assert r.returncode == 0, r.stderr
    assert KEY not in r.stdout + r.stderr
    assert "llm_api_key" in r.stdout and "(set)" in r.stdout


def test_cli_version():
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("chrysopedia ")


def test_settings_default_database_follows_data_dir(tmp_path):
    s = Settings(data_dir=tmp_path)
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path / 'chrysopedia.db'}"


def test_cli_output_into_a_closed_pipe_is_quiet(tmp_path):
    import os

    env = dict(os.environ, CHRYSOPEDIA_DATABASE_URL=f"sqlite:///{tmp_path / 'p.db'}")
    p = subprocess.Popen([sys.executable, "-m", "tui", "config"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    p.stdout.close()  # the reader is gone before anything is written
    err = p.stderr.read().decode()
    p.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err
