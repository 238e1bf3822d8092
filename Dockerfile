# fraud_app in a container (docs/deploy.md):
#   docker build -t fraud-app .
#   docker run -p 5006:5006 -v fraud-data:/var/lib/fraud-app -e FRAUD_APP_API_TOKEN=... -e FRAUD_APP_UI_PASSWORD=... fraud-app
# compose.yaml runs it behind nginx.
FROM python:3.11-slim

# LightGBM's wheel needs the GNU OpenMP runtime, which the slim image lacks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/fraud-app --shell /usr/sbin/nologin fraud-app \
    && mkdir -p /var/lib/fraud-app \
    && chown fraud-app:fraud-app /var/lib/fraud-app

WORKDIR /opt/fraud-app
COPY pyproject.toml README.md ./
COPY fraud_app ./fraud_app
RUN pip install --no-cache-dir .

# The database, model files and logs: one volume. `serve` fills an empty one with demo data on first start.
ENV FRAUD_APP_HOME=/var/lib/fraud-app \
    PYTHONUNBUFFERED=1
VOLUME /var/lib/fraud-app
WORKDIR /var/lib/fraud-app
USER fraud-app

EXPOSE 5006
# `serve` stops cleanly on SIGINT, as on Ctrl-C.
STOPSIGNAL SIGINT
# The API's health route, at the port, prefix and token the app itself reads from its settings. The first
# start with an empty volume generates, trains and scores before it answers.
HEALTHCHECK --interval=30s --timeout=10s --start-period=600s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; from fraud_app.config import load_settings; s = load_settings(); u.build_opener(u.ProxyHandler({})).open(u.Request(f'http://127.0.0.1:{s.port}{s.path_prefix}/api/v1/health', headers={'Authorization': f'Bearer {s.api_token}'}), timeout=8)"]
# On 0.0.0.0 `serve` starts only with FRAUD_APP_API_TOKEN (32+ characters) and FRAUD_APP_UI_PASSWORD or
# FRAUD_APP_UI_USERS set: pass them with -e, an env file or compose.yaml.
CMD ["fraud-app", "serve", "--address", "0.0.0.0", "--no-show"]
