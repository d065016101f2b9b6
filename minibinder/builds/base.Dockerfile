# minibinder's base image: Debian with Python, Node.js and npm, a virtualenv holding JupyterLab,
# the classic notebook UI and uv, and the jovyan user (uid 1000). Built by `minibinder base-image`.
ARG ROOTFS=debian:bookworm-slim
FROM ${ROOTFS}
ARG JUPYTER_PACKAGES="jupyterlab>=4,<5 notebook>=7,<8"
ARG PACKAGE_INDEX_URL=""
ARG NPM_REGISTRY_URL=""
ENV LANG=C.UTF-8 LC_ALL=C.UTF-8
USER root
RUN export DEBIAN_FRONTEND=noninteractive \
 && apt-get update -qq \
 && if python3 -c 'import ensurepip, venv' 2>/dev/null; then extra=""; \
    else extra="python3 python3-venv"; fi \
 && apt-get install -y -qq --no-install-recommends ca-certificates git less nodejs npm $extra \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY extra-ca.crt /etc/minibinder/extra-ca.crt
RUN cat /etc/ssl/certs/ca-certificates.crt /etc/minibinder/extra-ca.crt > /etc/minibinder/ca-bundle.crt \
 && useradd --create-home --uid 1000 --user-group --shell /bin/bash jovyan \
 && mkdir -p /srv/venv /srv/conda && chown 1000:1000 /srv/venv /srv/conda \
 && if [ -n "$NPM_REGISTRY_URL" ]; then echo "registry=$NPM_REGISTRY_URL" >> /etc/npmrc; fi \
 && printf '%s\n' '# Login shells (JupyterLab terminals) reset PATH; put the environment back.' \
      'export PATH="$HOME/.local/bin:/srv/conda/envs/notebook/bin:/srv/venv/bin:$PATH" VIRTUAL_ENV=/srv/venv' \
      > /etc/profile.d/00-minibinder-env.sh
ENV NB_USER=jovyan \
    NB_UID=1000 \
    USER=jovyan \
    HOME=/home/jovyan \
    REPO_DIR=/home/jovyan \
    VIRTUAL_ENV=/srv/venv \
    PATH=/home/jovyan/.local/bin:/srv/conda/envs/notebook/bin:/srv/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/minibinder/ca-bundle.crt \
    PIP_CERT=/etc/minibinder/ca-bundle.crt \
    REQUESTS_CA_BUNDLE=/etc/minibinder/ca-bundle.crt \
    NODE_EXTRA_CA_CERTS=/etc/minibinder/ca-bundle.crt \
    NPM_CONFIG_CAFILE=/etc/minibinder/ca-bundle.crt \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    PYTHONUNBUFFERED=1
USER 1000:1000
WORKDIR /home/jovyan
RUN if [ -n "$PACKAGE_INDEX_URL" ]; then export PIP_INDEX_URL="$PACKAGE_INDEX_URL" UV_INDEX_URL="$PACKAGE_INDEX_URL"; fi \
 && python3 -m venv /srv/venv \
 && pip install --quiet uv \
 && uv pip install $JUPYTER_PACKAGES \
 && jupyter lab --version
EXPOSE 8888
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser"]
