"""A small edgescore client: ingest a batch, read the users' medians, predict.

    pip install requests
    python examples/client.py [--url http://127.0.0.1:8000] [--token TOKEN]

Against `cargo xtask run` (the service on port 8000 with the default model), it prints what it
sent and what the service answered, and exits non-zero with the service's error sentence when a
request fails.
"""

import argparse
import sys
import time

import requests


class Edgescore:
    """The HTTP API of docs/http-api.md, one method per route used here."""

    def __init__(self, url, token=None, timeout=10):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    def _answer(self, response):
        if response.status_code >= 400:
            try:
                error = response.json()
            except ValueError:
                error = {"error": response.text}
            raise RuntimeError(
                f"{response.request.method} {response.url}: {response.status_code} "
                f"{error.get('error')} (request id {error.get('request_id')})"
            )
        return response.json()

    def ingest(self, events):
        """Scores and records events; returns {"processed": n, "rejected": [...]}."""
        return self._answer(
            self.session.post(f"{self.url}/ingest", json={"events": events}, timeout=self.timeout)
        )

    def median(self, user_id):
        """The user's median score over the window (None without events)."""
        user = requests.utils.quote(user_id, safe="")
        return self._answer(self.session.get(f"{self.url}/users/{user}/median", timeout=self.timeout))

    def predict(self, instances, version=None):
        """Scores rows (lists in feature order, or dicts keyed by feature name); no window changes."""
        params = {"version": version} if version else None
        return self._answer(
            self.session.post(
                f"{self.url}/predict", json={"instances": instances}, params=params, timeout=self.timeout
            )
        )

    def models(self):
        return self._answer(self.session.get(f"{self.url}/models", timeout=self.timeout))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--token", help="the service's API token, when it has one")
    args = parser.parse_args()
    client = Edgescore(args.url, args.token)

    active = next(m for m in client.models()["models"] if m["active"])
    names = active["feature_names"]
    print(f"model {active['name']} v{active['version']}: features {', '.join(names)}")

    now = time.time()
    events = [
        {"user_id": f"client-{i % 3}", "timestamp": now, "features": [0.1 * i, 0.2, 0.3]}
        for i in range(9)
    ]
    events.append({"user_id": "client-0", "timestamp": now, "features": [0.1, 0.2]})
    answer = client.ingest(events)
    print(f"ingest: processed {answer['processed']}, rejected {len(answer['rejected'])}")
    for rejection in answer["rejected"]:
        print(f"  event {rejection['index']}: {rejection['error']}: {rejection['message']}")

    for user in ("client-0", "client-1", "client-2"):
        m = client.median(user)
        print(f"median {user}: {m['median']:.6f} over {m['count']} events")

    prediction = client.predict([[0.1, 0.2, 0.3], dict(zip(names, [0.9, 0.0, 0.5]))])
    scores = ", ".join(f"{p:.6f}" for p in prediction["predictions"])
    print(f"predict (model {prediction['model_version']}): {scores}")


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, requests.RequestException) as e:
        print(f"client.py: {e}", file=sys.stderr)
        sys.exit(1)
