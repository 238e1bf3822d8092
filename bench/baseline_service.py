"""The plain baseline for bench/api_load.py, built only for the benchmark: FastAPI on uvicorn, a pandas
DataFrame per request and the same model's LightGBM prediction. No history features, no database write.

    FRAUD_APP_BASELINE_MODEL=models/<database id>/v1.lgbm.json uvicorn baseline_service:app --port 8000
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import lightgbm
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel

state = json.loads(Path(os.environ["FRAUD_APP_BASELINE_MODEL"]).read_text())
model, names = lightgbm.Booster(model_str=state["model"]), state["features"]
app = FastAPI()


class Transaction(BaseModel):
    transaction_id: str
    timestamp: str
    customer_id: str
    terminal_id: str
    amount: float
    channel: str | None = None


@app.post("/api/v1/score")
def score(tx: Transaction) -> dict:
    ts = pd.Timestamp(tx.timestamp)
    row = {name: float("nan") for name in names}
    row.update(amount=tx.amount, hour=float(ts.hour), weekend=float(ts.dayofweek >= 5), night=float(ts.hour < 6),
               is_online=float(tx.channel == "online"), is_atm=float(tx.channel == "atm"))
    frame = pd.DataFrame([row], columns=names)
    return {"transaction_id": tx.transaction_id, "fraud_probability": float(model.predict(frame.to_numpy())[0])}
