"""The client suites' servers: one recording HTTPS server per chain of the client PKI
(``tests.support.pki.make_pki``) and a CONNECT proxy, started once for the session."""

from __future__ import annotations

from tests.support.pki import PKI
from tests.support.tls_servers import ConnectProxy, RecordingTLSServer


class Servers:
    """The session's servers, by the chain they serve."""

    def __init__(self, pki: PKI) -> None:
        self.legit = RecordingTLSServer("legit", pki.chain_file("legit"))
        self.rogue = RecordingTLSServer("rogue", pki.chain_file("rogue"))
        self.appended = RecordingTLSServer("appended", pki.chain_file("appended"))
        self.untrusted = RecordingTLSServer("untrusted", pki.chain_file("untrusted"))
        self.wrong_host = RecordingTLSServer("wrong-host", pki.chain_file("wrong-host"))
        self.proxy = ConnectProxy()

    @property
    def all(self) -> tuple[RecordingTLSServer, ...]:
        return (self.legit, self.rogue, self.appended, self.untrusted, self.wrong_host)
