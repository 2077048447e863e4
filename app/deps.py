"""Cached dependencies for pages: settings, database URL, shared connections.

Connections use ``st.cache_resource``; loaders in pages use ``st.cache_data(ttl=...)``.
"""

from __future__ import annotations

import os

import streamlit as st

from shadowtutor.config import Settings


def secrets() -> dict:
    try:
        return dict(st.secrets)
    except Exception:  # no secrets.toml: environment and defaults only
        return {}


@st.cache_resource
def _settings(env_key: tuple) -> Settings:  # the key makes a changed environment reload
    return Settings.load(secrets=secrets())


def settings() -> Settings:
    """Settings from the environment and Streamlit secrets (reloaded when the environment
    changes, which tests rely on)."""
    prefixes = ("SHADOWTUTOR_", "DATABASE_URL")
    keys = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(prefixes)))
    return _settings(keys)
