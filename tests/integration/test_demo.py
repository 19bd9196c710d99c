"""`v2ghub demo` end to end (short event): summary, run record and plot are produced."""

from __future__ import annotations

import io
import json

from controller.demo import DemoOptions, run_demo


async def test_demo_runs_the_event_and_writes_summary_record_and_plot(tmp_path, mosquitto):
    out = io.StringIO()
    opts = DemoOptions(out_dir=tmp_path / "demo", hold_s=4.0, tail_s=2.0,
                       mqtt_host=mosquitto.host, mqtt_port=mosquitto.port)
    assert await run_demo(opts, out) == 0
    text = out.getvalue()
    assert f"broker at {mosquitto.host}:{mosquitto.port}" in text
    assert "20/20 stations booted" in text
    assert "compliance (SPEC §3.5 tube)" in text
    record = json.loads((tmp_path / "demo" / "run.json").read_text())
    summary = record["summary"]
    assert summary["n_vehicles"] == 20
    assert summary["requested_mean_kw"] == -100.0  # DC-L saturated at 49.5 Hz
    assert summary["delivered_mean_kw"] < -20.0  # the fleet exported during the event
    assert 0.0 < summary["compliance_pct"] <= 100.0
    assert summary["start_delay_s"] is not None
    assert len(record["record"]["t_s"]) > 50
    assert (tmp_path / "demo" / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
