# The site's image: the static binary and nothing else.
# `cargo xtask image` builds target/x86_64-unknown-linux-gnu/release/app and sends it with this file
# as the whole build context; no base image is pulled.
FROM scratch
COPY app /app
# A numeric non-root user: a scratch image has no /etc/passwd to name one.
USER 65532:65532
ENV PORT=8080
EXPOSE 8080
# A scratch image has no curl: the binary probes itself (GET /healthz on 127.0.0.1:$PORT).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/app", "healthcheck"]
ENTRYPOINT ["/app"]
