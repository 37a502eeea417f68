"""The ``api:`` section: authentication, rate limits and TLS (after the original iris-mcp's ApiConfig)."""

from __future__ import annotations

from pathlib import Path

from ._models import ApiConfig, RateLimitConfig, TlsConfig, WebhookConfig
from ._reader import Reader

_API_KEYS = ("requireAuth", "rateLimit", "tls", "cors", "webhooks")
_WEBHOOK_KEYS = ("secret", "allowPrivateNetworks", "maxAttempts", "retryBaseMs", "retryMaxMs", "timeoutMs")
_CORS_KEYS = ("enabled", "origins")
_RATE_KEYS = ("enabled", "windowMs", "maxRequests")
_TLS_KEYS = ("certFile", "keyFile")
_REFUSED = {
    "keyStorePath": "keys live in keys.db under the Iris home (--home / $IRIS_HOME); remove keyStorePath",
    "auditLogPath": "the audit log is audit.db under the Iris home (--home / $IRIS_HOME); remove it",
    "enabled": "the API is always on; it listens on settings.host and the configured ports",
    "port": "use settings.grpcPort and settings.httpPort",
    "host": "use settings.host",
}


def parse_api(reader: Reader, raw: object, base_dir: Path) -> ApiConfig:
    """Read the ``api:`` section; defaults are the secure ones (auth required, limits on, no TLS)."""
    data = reader.mapping("api", raw)
    if not data:
        return ApiConfig()
    reader.check_keys("api", data, _API_KEYS, refused=_REFUSED)
    default = ApiConfig()
    return ApiConfig(
        require_auth=reader.boolean("api.requireAuth", data.get("requireAuth"), default.require_auth),
        rate_limit=_rate_limit(reader, data.get("rateLimit")),
        tls=_tls(reader, data.get("tls"), base_dir),
        cors_origins=_cors(reader, data.get("cors")),
        webhooks=_webhooks(reader, data.get("webhooks")),
    )


def _webhooks(reader: Reader, raw: object) -> WebhookConfig:
    data = reader.mapping("api.webhooks", raw)
    default = WebhookConfig()
    if not data:
        return default
    reader.check_keys("api.webhooks", data, _WEBHOOK_KEYS, refused={})
    secret = reader.string("api.webhooks.secret", data.get("secret")) or ""
    if secret and not secret.startswith("whsec_"):
        reader.add("api.webhooks.secret", 'expected a Standard Webhooks secret, "whsec_" and base64')

    def integer(name: str, fallback: int, minimum: int) -> int:
        return reader.integer(f"api.webhooks.{name}", data.get(name), fallback, minimum=minimum)

    return WebhookConfig(
        secret=secret,
        allow_private_networks=reader.boolean(
            "api.webhooks.allowPrivateNetworks", data.get("allowPrivateNetworks"), False
        ),
        max_attempts=integer("maxAttempts", default.max_attempts, 1),
        retry_base_ms=integer("retryBaseMs", default.retry_base_ms, 1),
        retry_max_ms=integer("retryMaxMs", default.retry_max_ms, 1),
        timeout_ms=integer("timeoutMs", default.timeout_ms, 1),
    )


def _cors(reader: Reader, raw: object) -> tuple[str, ...]:
    data = reader.mapping("api.cors", raw)
    if not data:
        return ()
    reader.check_keys("api.cors", data, _CORS_KEYS, refused={})
    if not reader.boolean("api.cors.enabled", data.get("enabled"), True):
        return ()
    return reader.strings("api.cors.origins", data.get("origins"))


def _rate_limit(reader: Reader, raw: object) -> RateLimitConfig:
    data = reader.mapping("api.rateLimit", raw)
    default = RateLimitConfig()
    if not data:
        return default
    reader.check_keys("api.rateLimit", data, _RATE_KEYS, refused={})
    return RateLimitConfig(
        enabled=reader.boolean("api.rateLimit.enabled", data.get("enabled"), default.enabled),
        window_ms=reader.integer(
            "api.rateLimit.windowMs", data.get("windowMs"), default.window_ms, minimum=1
        ),
        max_requests=reader.integer(
            "api.rateLimit.maxRequests", data.get("maxRequests"), default.max_requests, minimum=1
        ),
    )


def _tls(reader: Reader, raw: object, base_dir: Path) -> TlsConfig | None:
    data = reader.mapping("api.tls", raw)
    if not data:
        return None
    reader.check_keys("api.tls", data, _TLS_KEYS, refused={})
    paths: dict[str, Path] = {}
    for name in _TLS_KEYS:
        key = f"api.tls.{name}"
        text = reader.string(key, data.get(name))
        if text is None:
            reader.add(key, "is required when api.tls is set")
            continue
        path = (base_dir / Path(text).expanduser()).resolve()
        if not path.is_file():
            reader.add(key, f"no such file: {path}")
            continue
        paths[name] = path
    if len(paths) != len(_TLS_KEYS):
        return None
    return TlsConfig(cert_file=paths["certFile"], key_file=paths["keyFile"])
