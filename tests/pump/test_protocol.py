"""MQTT payloads and topics: the spec examples decode; bad input is refused with a reason."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from forecourt.pump.domain import (
    REPORT_EDGES,
    FPState,
    FuellingPoint,
    Nozzle,
    Preset,
    SaleBuffer,
    SaleRecorded,
    SaleStatus,
    Totals,
)
from forecourt.pump.protocol import (
    MAX_PAYLOAD_BYTES,
    Announcement,
    AuthoriseCommand,
    DeviceStatus,
    ProtocolError,
    ProtocolErrorKind,
    SaleReport,
    StateReport,
    Topic,
    TopicKind,
    build_topic,
    decode,
    encode,
    gateway_filters,
    parse_topic,
    server_filters,
    speaker_filters,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "pump-protocol.md"
EXAMPLE = re.compile(r"```json topic=(\S+)\n(.*?)\n```", re.DOTALL)
EXAMPLES = EXAMPLE.findall(DOC.read_text(encoding="utf-8"))
STATE = "forecourt/v1/KM0001/fp/2/state"
IDLE = {"event_seq": 1, "ts": "2026-05-01T00:00:00Z", "state": 3}


def _without_nulls(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v is not None}


def _refused(topic: str, payload: bytes | dict[str, Any]) -> ProtocolError:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    with pytest.raises(ProtocolError) as info:
        decode(topic, raw)
    return info.value


# -- the examples in the spec ---------------------------------------------------------------


def test_the_spec_has_an_example_for_every_topic_and_command() -> None:
    kinds = {parse_topic(topic).kind for topic, _ in EXAMPLES}
    assert kinds == set(TopicKind)
    commands = {orjson.loads(body)["type"] for topic, body in EXAMPLES if topic.endswith("/cmd")}
    assert commands == {
        "authorise",
        "stop",
        "lock_sale",
        "unlock_sale",
        "clear_sale",
        "price_table",
        "reread_sales",
        "report_state",
    }


@pytest.mark.parametrize(("topic", "body"), EXAMPLES)
def test_every_spec_example_round_trips(topic: str, body: str) -> None:
    decoded = decode(topic, body.encode())
    assert str(decoded.topic) == topic
    encoded = encode(decoded.message)
    assert decode(topic, encoded) == decoded
    written = _without_nulls(orjson.loads(body))
    again = orjson.loads(encoded)
    assert {k: again[k] for k in written} == written
    assert all(again[k] in (None, False, []) for k in again.keys() - written.keys())


def test_spec_sales_obey_the_domain_rules() -> None:
    fp = FuellingPoint(
        number=2,
        nozzles={3: Nozzle(3, "95", tank=2)},
        state=FPState.IDLE,
        buffer=SaleBuffer(last_seq=1040, totalizers={3: Totals(1040, 12_345_678, 10_234_567)}),
    )
    sales = sorted(
        (decode(t, b.encode()).message for t, b in EXAMPLES if t.endswith("/fp/2/sale")),
        key=lambda m: m.seq if isinstance(m, SaleReport) else 0,
    )
    assert [m.seq for m in sales if isinstance(m, SaleReport)] == [1041, 1042, 1043]
    for message in sales:
        assert isinstance(message, SaleReport)
        [event] = fp.record_sale(message.to_sale())
        assert isinstance(event, SaleRecorded)
    assert fp.totalizers[3] == Totals(1043, 12_436_681, 10_311_465)
    assert fp.buffer.get(1042).status is SaleStatus.LOCKED
    assert fp.buffer.get(1042).locked_by == "ord_8f3a2c"


def test_decoded_messages_convert_to_domain_values() -> None:
    [authorise] = [
        decode(t, b.encode()).message
        for t, b in EXAMPLES
        if t.endswith("/cmd") and '"authorise"' in b
    ]
    assert isinstance(authorise, AuthoriseCommand)
    assert authorise.preset is not None
    assert authorise.preset.to_domain() == Preset.amount(30_000)
    state = decode(STATE, orjson.dumps(IDLE)).message
    assert isinstance(state, StateReport)
    assert state.fp_state is FPState.IDLE


def test_times_are_normalised_to_utc() -> None:
    message = decode(STATE, orjson.dumps({**IDLE, "ts": "2026-05-01T08:00:00+08:00"})).message
    assert orjson.loads(encode(message))["ts"] == "2026-05-01T00:00:00Z"


# -- topics ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(TopicKind))
def test_topics_build_and_parse(kind: TopicKind) -> None:
    number = 12 if kind.numbered else None
    text = build_topic(kind, "KM0001", number)
    assert text.startswith("forecourt/v1/KM0001/")
    assert parse_topic(text) == Topic(kind, "KM0001", number)


def test_topic_examples() -> None:
    assert build_topic(TopicKind.FP_STATE, "KM0001", 2) == "forecourt/v1/KM0001/fp/2/state"
    assert build_topic(TopicKind.COMMAND, "KM0001") == "forecourt/v1/KM0001/cmd"
    assert parse_topic("forecourt/v1/KM0001/fp/7/sale/ack") == Topic(
        TopicKind.FP_SALE_ACK, "KM0001", 7
    )
    retained = {k for k in TopicKind if k.retained}
    assert retained == {TopicKind.GATEWAY_ONLINE, TopicKind.FP_STATE, TopicKind.SPEAKER_ONLINE}


@pytest.mark.parametrize(
    "topic",
    [
        "forecourt/v2/KM0001/fp/1/state",
        "other/v1/KM0001/fp/1/state",
        "forecourt/v1/KM0001",
        "forecourt/v1/KM 0001/fp/1/state",
        "forecourt/v1/KM0001/fp/01/state",
        "forecourt/v1/KM0001/fp/0/state",
        "forecourt/v1/KM0001/fp/x/state",
        "forecourt/v1/KM0001/fp/1/status",
        "forecourt/v1/KM0001/fp/1/state/extra",
        "forecourt/v1/KM0001/gateway/online/",
        "forecourt/v1/+/fp/1/state",
    ],
)
def test_unknown_topics_are_refused(topic: str) -> None:
    err = _refused(topic, IDLE)
    assert err.kind is ProtocolErrorKind.UNKNOWN_TOPIC
    assert err.code == "pump_protocol_error"
    assert err.status == 422


def test_topic_values_are_checked() -> None:
    with pytest.raises(ValueError, match="needs number"):
        Topic(TopicKind.FP_STATE, "KM0001")
    with pytest.raises(ValueError, match="takes no number"):
        Topic(TopicKind.COMMAND, "KM0001", 1)
    with pytest.raises(ValueError, match="station"):
        build_topic(TopicKind.COMMAND, "KM/0001")
    with pytest.raises(ValueError, match=r"1\.\.9999"):
        build_topic(TopicKind.FP_STATE, "KM0001", 10_000)


def test_subscription_filters() -> None:
    assert server_filters() == [
        "forecourt/v1/+/gateway/online",
        "forecourt/v1/+/fp/+/state",
        "forecourt/v1/+/fp/+/progress",
        "forecourt/v1/+/fp/+/sale",
        "forecourt/v1/+/fp/+/sale/status",
        "forecourt/v1/+/tank/+/reading",
        "forecourt/v1/+/tank/+/delivery",
        "forecourt/v1/+/cmd/ack",
        "forecourt/v1/+/speaker/+/online",
        "forecourt/v1/+/speaker/+/ack",
    ]
    assert gateway_filters("KM0001") == [
        "forecourt/v1/KM0001/cmd",
        "forecourt/v1/KM0001/fp/+/sale/ack",
        "forecourt/v1/KM0001/tank/+/delivery/ack",
    ]
    assert speaker_filters("KM0001", 1) == ["forecourt/v1/KM0001/speaker/1/say"]


# -- bad payloads ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"{", b"", b"not json", b'{"a": 1,}', b"\xff\xfe"])
def test_malformed_json_is_refused(raw: bytes) -> None:
    err = _refused(STATE, raw)
    assert err.kind is ProtocolErrorKind.MALFORMED_JSON
    assert err.reason


def test_oversized_payload_is_refused() -> None:
    err = _refused(STATE, b" " * (MAX_PAYLOAD_BYTES + 1))
    assert err.kind is ProtocolErrorKind.TOO_LARGE


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**IDLE, "event_seq": "1"}, "event_seq"),
        ({**IDLE, "event_seq": 1.0}, "event_seq"),
        ({**IDLE, "event_seq": True}, "event_seq"),
        ({**IDLE, "event_seq": -1}, "event_seq"),
        ({**IDLE, "state": "3"}, "state"),
        ({**IDLE, "ts": "2026-05-01T00:00:00"}, "ts"),
        ({**IDLE, "ts": 1777593600}, "ts"),
        ({**IDLE, "colour": "red"}, "colour"),
        ({"event_seq": 1, "state": 3}, "ts"),
        ({**IDLE, "nozzle": 0}, "nozzle"),
        ({**IDLE, "last_seq": 2**32}, "last_seq"),
        ({**IDLE, "error_code": "Bad Code"}, "error_code"),
    ],
)
def test_wrong_types_extra_and_missing_fields_are_refused(
    payload: dict[str, Any], field: str
) -> None:
    err = _refused(STATE, payload)
    assert err.kind is ProtocolErrorKind.INVALID_PAYLOAD
    assert err.reason.startswith(f"{field}:") or f"; {field}:" in err.reason


def test_top_level_must_be_an_object() -> None:
    err = _refused(STATE, b"[1, 2]")
    assert err.kind is ProtocolErrorKind.INVALID_PAYLOAD


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({**IDLE, "state": 10}, "state must be 1..9"),
        ({**IDLE, "state": 0}, "state must be 1..9"),
        ({**IDLE, "state": 8}, "nozzle is required in state 8"),
        ({**IDLE, "state": 11}, "error_code is required"),
        ({**IDLE, "error_code": "meter_fault"}, "error_code is required"),
    ],
)
def test_state_report_rules(payload: dict[str, Any], why: str) -> None:
    assert why in _refused(STATE, payload).reason


def _example(topic_end: str, contains: str = "") -> tuple[str, dict[str, Any]]:
    for topic, body in EXAMPLES:
        if topic.endswith(topic_end) and contains in body:
            data: dict[str, Any] = orjson.loads(body)
            return topic, data
    raise AssertionError(topic_end)


@pytest.mark.parametrize(
    ("topic_end", "contains", "change", "why"),
    [
        ("/cmd", '"authorise"', {"valid_until": "2026-05-01T00:20:00Z"}, "valid_until"),
        ("/cmd", '"authorise"', {"preset": {"kind": "amount_fen", "value": 0}}, "preset.value"),
        ("/cmd", '"authorise"', {"preset": {"kind": "litres", "value": 5}}, "preset.kind"),
        ("/cmd", '"authorise"', {"type": "explode"}, "does not match any of the expected tags"),
        ("/cmd", '"price_table"', {"prices": {}}, "prices"),
        ("/cmd", '"price_table"', {"prices": {"92": 7.81}}, "prices.92"),
        ("/cmd", '"reread_sales"', {"to_seq": 1000}, "to_seq is below from_seq"),
        ("/cmd/ack", '"rejected"', {"reason": None}, "reason is required"),
        ("/cmd/ack", '"ok"', {"reason": "sale_locked"}, "reason is required"),
        ("/fp/2/sale", "1041", {"amount_fen": -1}, "amount_fen"),
        ("/fp/2/sale", "1041", {"seq": 0}, "seq"),
        ("/fp/2/sale", "1041", {"totalizer_volume_ml": 1}, "totalizer_volume_ml is below"),
        ("/fp/2/sale", "1041", {"started_at": "2026-05-01T00:05:00Z"}, "started_at is after"),
        ("/fp/2/sale", "1041", {"unit_price_fen": 0}, "unit_price_fen"),
        ("/fp/2/sale/ack", '"refused"', {"reason": None}, "reason is required"),
        ("/sale/status", "", {"lock_ref": None}, "lock_ref is required"),
        ("/tank/1/reading", "", {"temperature_c": 180.5}, "temperature_c"),
        ("/tank/1/reading", "", {"product_volume_ml": 1.5}, "product_volume_ml"),
        ("/tank/1/delivery", "", {"ended_at": "2026-05-01T02:00:00Z"}, "started_at is after"),
        ("/speaker/1/say", "", {"station": "KM0002"}, "does not match the topic"),
        ("/speaker/1/say", "", {"text": ""}, "text"),
        ("/speaker/1/say", "", {"valid_until": "2026-05-01T00:23:40Z"}, "valid_until"),
        ("/speaker/1/ack", "", {"status": "heard"}, "status"),
        ("/gateway/online", "fcc", {"online": "yes"}, "online"),
        ("/gateway/online", "fcc", {"volume_resolution_ml": 0}, "volume_resolution_ml"),
    ],
)
def test_payload_rules(topic_end: str, contains: str, change: dict[str, Any], why: str) -> None:
    topic, data = _example(topic_end, contains)
    err = _refused(topic, {**data, **change})
    assert err.kind is ProtocolErrorKind.INVALID_PAYLOAD
    assert why in err.reason


def test_non_finite_numbers_are_refused() -> None:
    topic, data = _example("/tank/1/reading")
    raw = orjson.dumps(data).replace(b'"temperature_c":18.6', b'"temperature_c":NaN')
    assert b"NaN" in raw
    assert _refused(topic, raw).kind in (
        ProtocolErrorKind.MALFORMED_JSON,
        ProtocolErrorKind.INVALID_PAYLOAD,
    )


def test_a_payload_for_another_topic_is_refused() -> None:
    _, sale = _example("/fp/2/sale", "1041")
    err = _refused(STATE, sale)
    assert err.kind is ProtocolErrorKind.INVALID_PAYLOAD
    assert "Extra inputs are not permitted" in err.reason


def test_encode_writes_nulls_and_utc() -> None:
    status = DeviceStatus.model_validate_json(
        b'{"online": false, "ts": "2026-05-01T08:00:00+08:00"}', strict=True
    )
    assert orjson.loads(encode(status)) == {
        "online": False,
        "ts": "2026-05-01T00:00:00Z",
        "firmware": None,
        "volume_resolution_ml": None,
    }
    topic, data = _example("/speaker/1/say")
    message = decode(topic, orjson.dumps(data)).message
    assert isinstance(message, Announcement)
    assert message.text == "微信支付 300.00 元，3号枪"


def test_the_spec_table_of_reportable_changes_matches_the_domain() -> None:
    rows = re.findall(
        r"^\| (\d+) [A-Za-z ]+ \| ([\d, ]+) \|$", DOC.read_text(encoding="utf-8"), re.MULTILINE
    )
    table = {FPState(int(a)): {FPState(int(b)) for b in bs.split(", ")} for a, bs in rows}
    assert table == {s: set(edges) for s, edges in REPORT_EDGES.items() if edges}
