"""Every error and warning pinwarden raises, and the base class of the errors for refused input.

The whole tree; each class is importable from the public module named beside it (its
``__module__`` says so too, in reprs, logs and tracebacks), and ``tests/core/test_errors_tree.py``
fails when a class is missing here or drawn under the wrong parent::

    Exception
    ├── PinwardenError                  pinwarden.errors: input or state pinwarden refuses
    │   ├── InvalidPinError             pinwarden.errors: not a SHA-256 SPKI pin (also ValueError)
    │   ├── InvalidHostError            pinwarden.errors: a host or pattern that cannot be
    │   │                               normalised or would cover a public suffix (also ValueError)
    │   ├── UnsupportedKeyMaterial      pinwarden.errors: no certificate, key or CSR (ValueError)
    │   ├── DocumentError               pinwarden.document: a signed document refused (spec §6)
    │   │   ├── FormatError             pinwarden.document: malformed (also ValueError)
    │   │   ├── SizeError               pinwarden.document: over its size cap
    │   │   ├── SignatureError          pinwarden.document: signatures or threshold not acceptable
    │   │   ├── RollbackError           pinwarden.document: below the version floor
    │   │   ├── ExpiredError            pinwarden.document: the document or its keyring expired
    │   │   ├── KeyringError            pinwarden.document: no keyring walk to the needed version
    │   │   └── ChannelError            pinwarden.client: a pin set of another channel
    │   ├── KeyStoreError               pinwarden.document: a key directory or key file unusable
    │   ├── FetchError                  pinwarden.client: the pin server unreachable or its answer
    │   │                               not a document (``status``: the HTTP status, if any)
    │   ├── CacheError                  pinwarden.client._cache: a cache file unreadable (internal:
    │   │                               the dynamic client reports it as an event)
    │   ├── CommandError                pinwarden.cli._common: a command's one-line error and exit
    │   │                               status (internal: the CLI prints it as one line)
    │   ├── ChannelPinsError            pinwarden.rotation: a pin set not fetched, or refused
    │   ├── LiveChainError              pinwarden.rotation: a host's live chain not readable
    │   ├── MaterialError               pinwarden.rotation: no certificate, chain, key or CSR naming
    │   │                               a usable host (preflight input)
    │   ├── UptakeError                 pinwarden.rotation: the server's fetch counts unreadable
    │   ├── ExportRefused               pinwarden.export: a channel a platform cannot pin safely
    │   └── ServerError                 pinwarden.server: the pin server refuses a request
    │       ├── ValidationError         pinwarden.server: bad input (422)
    │       ├── NotFoundError           pinwarden.server: no such channel, rule, version (404)
    │       ├── ConflictError           pinwarden.server: conflicts with the stored state (409)
    │       ├── AuthError               pinwarden.server: no or an unknown token (401)
    │       ├── ScopeError              pinwarden.server: the token lacks the scope (403)
    │       ├── UnsafePublishError      pinwarden.server: safe publishing refused the rules
    │       ├── ConfigError             pinwarden.server: a server setting out of range
    │       └── SnapshotError           pinwarden.server._snapshot: a stored snapshot unreadable
    ├── ValueError
    │   ├── BadTreeHead                 pinwarden.server.ct._heads: a CT tree head that does not
    │   │   │                           parse or verify (internal: the watch raises an alert)
    │   │   └── BadSignature            pinwarden.server.ct._heads: not signed by the log's key
    │   ├── LogListError                pinwarden.server.ct._loglist: a CT log list unreadable
    │   └── MalformedEntry              pinwarden.server.ct._wire: a CT log entry that does not
    │                                   parse
    ├── LogFetchError                   pinwarden.server.ct._fetch: a CT log request failed
    │   └── LogNotFound                 pinwarden.server.ct._fetch: the CT log answered 404
    ├── LogMisbehaved                   pinwarden.server.ct._readers: a CT log contradicts what it
    │                                   signed (internal: the watch raises an alert)
    ├── RuntimeError
    │   ├── PinningUnavailableError     pinwarden.client: something in the process keeps pins from
    │   │                               being enforced (gevent or eventlet patched ``ssl``, ...)
    │   ├── ImmutableRowError           pinwarden.server._models: a published row was changed
    │   └── LabError                    pinwarden.rotation._lab: the demo's or drill's set-up
    │                                   failed (a port, the server, a refused publish)
    ├── ssl.SSLCertVerificationError
    │   └── PinValidationError          pinwarden.client: the connection refused by its pin rule
    └── UserWarning
        └── SinglePinWarning            pinwarden.client: an enforced rule with no backup pin

Errors for refused input share ``PinwardenError``; the three under ``pinwarden.errors`` are also
``ValueError``, so callers that only know the standard library still catch them.
``PinValidationError`` is an ``ssl.SSLCertVerificationError`` so that every HTTP stack treats a
pin failure as a certificate failure; ``pinwarden.client.pin_error`` finds it in their wrappers.
"""

from __future__ import annotations

__all__ = ["InvalidHostError", "InvalidPinError", "PinwardenError", "UnsupportedKeyMaterial"]


class PinwardenError(Exception):
    """Base of every error pinwarden raises for input it refuses."""


class InvalidPinError(PinwardenError, ValueError):
    """A pin is not ``sha256/<base64 of 32 bytes>`` (or one of its accepted spellings)."""


class InvalidHostError(PinwardenError, ValueError):
    """A hostname or host pattern is malformed, or a pattern would cover a public suffix."""


class UnsupportedKeyMaterial(PinwardenError, ValueError):
    """The input holds no certificate, public key, private key or CSR that pinwarden can read."""
