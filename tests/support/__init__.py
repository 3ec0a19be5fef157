"""What several suites share: test PKIs (``pki``), TLS servers on 127.0.0.1 (``tls_servers``), an
injectable clock (``clock``) and bounded waiting (``waiting``).

Client code only: nothing here imports pinwarden's server package, so the client suites run
where the server's extra is not installed.
"""
