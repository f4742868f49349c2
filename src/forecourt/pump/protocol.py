"""MQTT 5 wire format between the server, station gateways and speakers (docs/pump-protocol.md).

Every payload is a UTF-8 JSON object validated strictly (no extra fields, no type coercion).
Units: volume in ml, money in fen, prices in fen per litre, times RFC 3339 with an offset
(normalised to UTC). All topics use QoS 1; only the state and online topics are retained.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self, cast

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from forecourt.errors import Unprocessable
from forecourt.pump.domain import MAX_SEQ, FPState, Preset, PresetKind, Sale

ROOT = "forecourt"
VERSION = "v1"
QOS = 1
MAX_PAYLOAD_BYTES = 16 * 1024
MAX_JSON_INT = 2**53 - 1  # exact in every JSON parser (IEEE double)

STATION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
NUMBER_RE = re.compile(r"^[1-9][0-9]{0,3}$")


# -- errors ----------------------------------------------------------------------------------


class ProtocolErrorKind(StrEnum):
    """Why a message was refused before reaching the domain."""

    UNKNOWN_TOPIC = "unknown_topic"
    TOO_LARGE = "too_large"
    MALFORMED_JSON = "malformed_json"
    INVALID_PAYLOAD = "invalid_payload"


class ProtocolError(Unprocessable):
    """A message that cannot be decoded; `kind` and `reason` say why."""

    code, title = "pump_protocol_error", "Invalid pump message"

    def __init__(self, kind: ProtocolErrorKind, reason: str) -> None:
        super().__init__(f"{kind.value}: {reason}")
        self.kind = kind
        self.reason = reason


# -- field types -----------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


Stamp = Annotated[AwareDatetime, AfterValidator(_utc)]
Ref = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
StationCode = Annotated[str, StringConstraints(pattern=STATION_RE.pattern)]
GradeCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+-]{1,8}$")]
Number = Annotated[int, Field(ge=1, le=9999)]
Seq = Annotated[int, Field(ge=1, le=MAX_SEQ)]
EventSeq = Annotated[int, Field(ge=0, le=MAX_JSON_INT)]
Ml = Annotated[int, Field(ge=0, le=MAX_JSON_INT)]
Fen = Annotated[int, Field(ge=0, le=MAX_JSON_INT)]
FenPerLitre = Annotated[int, Field(ge=1, le=100_000)]
Version = Annotated[int, Field(ge=1, le=MAX_JSON_INT)]
Millimetres = Annotated[float, Field(ge=0, le=100_000, allow_inf_nan=False)]
Celsius = Annotated[float, Field(ge=-60, le=100, allow_inf_nan=False)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# -- device presence -------------------------------------------------------------------------


class DeviceStatus(_Message):
    """Online flag of a gateway or speaker (retained; `online: false` is the last will)."""

    online: bool
    ts: Stamp
    firmware: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    volume_resolution_ml: Annotated[int, Field(ge=1, le=1000)] | None = None


# -- fuelling points -------------------------------------------------------------------------

WIRE_STATES = frozenset(int(s) for s in FPState if s is not FPState.OFFLINE)


class StateReport(_Message):
    """A fuelling point's state (retained; the newest `event_seq` wins)."""

    event_seq: EventSeq
    ts: Stamp
    state: int
    nozzle: Number | None = None
    error_code: Code | None = None
    last_seq: Annotated[int, Field(ge=0, le=MAX_SEQ)] | None = None
    price_version: Version | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.state not in WIRE_STATES:
            raise ValueError("state must be 1..9 (IFSF) or 11 (error)")
        needs_nozzle = {4, 6, 7, 8, 9}
        if self.state in needs_nozzle and self.nozzle is None:
            raise ValueError(f"nozzle is required in state {self.state}")
        if (self.state == FPState.ERROR) != (self.error_code is not None):
            raise ValueError("error_code is required in state 11 and only there")
        return self

    @property
    def fp_state(self) -> FPState:
        """The reported state as the domain enum."""
        return FPState(self.state)


class FuellingProgress(_Message):
    """Running totals of the current transaction (not retained)."""

    event_seq: EventSeq
    ts: Stamp
    nozzle: Number
    grade: GradeCode
    volume_ml: Ml
    amount_fen: Fen
    unit_price_fen: FenPerLitre
    auth_ref: Ref | None = None


class SaleReport(_Message):
    """A completed sale from the pump's buffer, numbered by the pump's TTC (`seq`)."""

    seq: Seq
    ts: Stamp
    nozzle: Number
    grade: GradeCode
    volume_ml: Ml
    amount_fen: Fen
    unit_price_fen: FenPerLitre
    totalizer_volume_ml: Ml
    totalizer_amount_fen: Fen
    started_at: Stamp | None = None
    ended_at: Stamp
    auth_ref: Ref | None = None
    price_version: Version | None = None
    reread: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.started_at is not None and self.started_at > self.ended_at:
            raise ValueError("started_at is after ended_at")
        if self.totalizer_volume_ml < self.volume_ml:
            raise ValueError("totalizer_volume_ml is below volume_ml")
        if self.totalizer_amount_fen < self.amount_fen:
            raise ValueError("totalizer_amount_fen is below amount_fen")
        return self

    def to_sale(self) -> Sale:
        """The domain sale (payable, or locked by `auth_ref` once recorded)."""
        return Sale(
            seq=self.seq,
            nozzle=self.nozzle,
            grade=self.grade,
            volume_ml=self.volume_ml,
            amount_fen=self.amount_fen,
            unit_price_fen=self.unit_price_fen,
            totalizer_volume_ml=self.totalizer_volume_ml,
            totalizer_amount_fen=self.totalizer_amount_fen,
            ended_at=self.ended_at,
            auth_ref=self.auth_ref,
        )


class SaleAck(_Message):
    """The server stored (or refused) a sale; the gateway stops re-sending it."""

    seq: Seq
    status: Literal["accepted", "duplicate", "refused"]
    reason: Code | None = None
    ts: Stamp

    @model_validator(mode="after")
    def _reason(self) -> Self:
        if (self.status == "refused") != (self.reason is not None):
            raise ValueError("reason is required when refused and only then")
        return self


class SaleStatusReport(_Message):
    """A buffer change made at the station (kiosk POS lock, cash settlement, pump timeout)."""

    event_seq: EventSeq
    ts: Stamp
    seq: Seq
    status: Literal["payable", "locked", "cleared"]
    lock_ref: Ref | None = None

    @model_validator(mode="after")
    def _holder(self) -> Self:
        if (self.status == "payable") != (self.lock_ref is None):
            raise ValueError("lock_ref is required when locked or cleared and only then")
        return self


# -- tanks -----------------------------------------------------------------------------------


class TankReading(_Message):
    """A tank gauge (ATG) reading."""

    event_seq: EventSeq
    ts: Stamp
    grade: GradeCode
    product_height_mm: Millimetres
    water_height_mm: Millimetres
    temperature_c: Celsius
    product_volume_ml: Ml
    product_volume_15c_ml: Ml | None = None
    water_volume_ml: Ml
    ullage_ml: Ml | None = None
    alarms: Annotated[list[Code], Field(max_length=16)] = []


class TankDelivery(_Message):
    """A delivery (卸油) the gauge detected, identified by the gateway's `delivery_id`."""

    delivery_id: Ref
    ts: Stamp
    grade: GradeCode
    started_at: Stamp
    ended_at: Stamp
    start_volume_ml: Ml
    end_volume_ml: Ml
    volume_ml: Ml
    volume_15c_ml: Ml | None = None

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.started_at > self.ended_at:
            raise ValueError("started_at is after ended_at")
        return self


class DeliveryAck(_Message):
    """The server stored (or refused) a delivery."""

    delivery_id: Ref
    status: Literal["accepted", "duplicate", "refused"]
    reason: Code | None = None
    ts: Stamp

    @model_validator(mode="after")
    def _reason(self) -> Self:
        if (self.status == "refused") != (self.reason is not None):
            raise ValueError("reason is required when refused and only then")
        return self


# -- commands (server -> gateway) ------------------------------------------------------------


class PresetSpec(_Message):
    """Stop at this amount (fen) or volume (ml)."""

    kind: Literal["amount_fen", "volume_ml"]
    value: Annotated[int, Field(ge=1, le=MAX_JSON_INT)]

    def to_domain(self) -> Preset:
        """The domain preset."""
        return Preset(PresetKind(self.kind), self.value)


class _Command(_Message):
    command_id: Ref
    ts: Stamp
    valid_until: Stamp

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.valid_until <= self.ts:
            raise ValueError("valid_until must be after ts")
        return self


class AuthoriseCommand(_Command):
    """Authorise a fuelling point until `valid_until`, optionally with a preset and one nozzle."""

    type: Literal["authorise"]
    fp: Number
    auth_ref: Ref
    preset: PresetSpec | None = None
    nozzle: Number | None = None


class StopCommand(_Command):
    """Stop the fuelling point and end its authorisation."""

    type: Literal["stop"]
    fp: Number


class LockSaleCommand(_Command):
    """Lock sale `seq` for `lock_ref` (an order) so nobody else can pay it."""

    type: Literal["lock_sale"]
    fp: Number
    seq: Seq
    lock_ref: Ref


class UnlockSaleCommand(_Command):
    """Release the lock `lock_ref` holds on sale `seq`."""

    type: Literal["unlock_sale"]
    fp: Number
    seq: Seq
    lock_ref: Ref


class ClearSaleCommand(_Command):
    """Sale `seq` was paid by `lock_ref`: clear it from the pump's buffer."""

    type: Literal["clear_sale"]
    fp: Number
    seq: Seq
    lock_ref: Ref


class PriceTableCommand(_Command):
    """Prices per grade (fen/L) in force from `effective_at`, superseding lower versions."""

    type: Literal["price_table"]
    version: Version
    effective_at: Stamp
    prices: Annotated[dict[GradeCode, FenPerLitre], Field(min_length=1, max_length=32)]


class RereadSalesCommand(_Command):
    """Publish sales from_seq..to_seq again (to_seq null: up to the newest)."""

    type: Literal["reread_sales"]
    fp: Number
    from_seq: Seq
    to_seq: Seq | None = None

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.to_seq is not None and self.to_seq < self.from_seq:
            raise ValueError("to_seq is below from_seq")
        return self


class ReportStateCommand(_Command):
    """Publish the state of one fuelling point (or all, when fp is null) again."""

    type: Literal["report_state"]
    fp: Number | None = None


Command = Annotated[
    AuthoriseCommand
    | StopCommand
    | LockSaleCommand
    | UnlockSaleCommand
    | ClearSaleCommand
    | PriceTableCommand
    | RereadSalesCommand
    | ReportStateCommand,
    Field(discriminator="type"),
]


class CommandAck(_Message):
    """The gateway's answer to a command (sent again, unchanged, for a repeated command_id)."""

    command_id: Ref
    status: Literal["ok", "rejected"]
    reason: Code | None = None
    ts: Stamp

    @model_validator(mode="after")
    def _reason(self) -> Self:
        if (self.status == "rejected") != (self.reason is not None):
            raise ValueError("reason is required when rejected and only then")
        return self


# -- speakers --------------------------------------------------------------------------------


class Announcement(_Message):
    """Text for a station speaker to read out once (e.g. 微信支付 300.00 元，3号枪)."""

    message_id: Ref
    station: StationCode
    text: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    created_at: Stamp
    ts: Stamp
    valid_until: Stamp

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.valid_until <= self.created_at:
            raise ValueError("valid_until must be after created_at")
        return self


class SpeakerAck(_Message):
    """The speaker handled `message_id` (sent again, unchanged, for a repeated id)."""

    message_id: Ref
    status: Literal["played", "expired", "rejected"]
    reason: Code | None = None
    ts: Stamp

    @model_validator(mode="after")
    def _reason(self) -> Self:
        if (self.status == "rejected") != (self.reason is not None):
            raise ValueError("reason is required when rejected and only then")
        return self


Message = (
    DeviceStatus
    | StateReport
    | FuellingProgress
    | SaleReport
    | SaleAck
    | SaleStatusReport
    | TankReading
    | TankDelivery
    | DeliveryAck
    | AuthoriseCommand
    | StopCommand
    | LockSaleCommand
    | UnlockSaleCommand
    | ClearSaleCommand
    | PriceTableCommand
    | RereadSalesCommand
    | ReportStateCommand
    | CommandAck
    | Announcement
    | SpeakerAck
)


# -- topics ----------------------------------------------------------------------------------


class TopicKind(StrEnum):
    """Topic templates below forecourt/v1/{station}/; `{n}` is a fp, tank or speaker number."""

    GATEWAY_ONLINE = "gateway/online"
    FP_STATE = "fp/{n}/state"
    FP_PROGRESS = "fp/{n}/progress"
    FP_SALE = "fp/{n}/sale"
    FP_SALE_ACK = "fp/{n}/sale/ack"
    FP_SALE_STATUS = "fp/{n}/sale/status"
    TANK_READING = "tank/{n}/reading"
    TANK_DELIVERY = "tank/{n}/delivery"
    TANK_DELIVERY_ACK = "tank/{n}/delivery/ack"
    COMMAND = "cmd"
    COMMAND_ACK = "cmd/ack"
    SPEAKER_ONLINE = "speaker/{n}/online"
    SPEAKER_SAY = "speaker/{n}/say"
    SPEAKER_ACK = "speaker/{n}/ack"

    @property
    def numbered(self) -> bool:
        """Whether the topic carries a fp, tank or speaker number."""
        return "{n}" in self.value

    @property
    def retained(self) -> bool:
        """Only presence and fuelling-point state are retained."""
        return self in _RETAINED

    @property
    def upstream(self) -> bool:
        """Published by a device (gateway or speaker), read by the server."""
        return self not in _DOWNSTREAM


_RETAINED = frozenset({TopicKind.GATEWAY_ONLINE, TopicKind.FP_STATE, TopicKind.SPEAKER_ONLINE})
_DOWNSTREAM = frozenset(
    {TopicKind.FP_SALE_ACK, TopicKind.TANK_DELIVERY_ACK, TopicKind.COMMAND, TopicKind.SPEAKER_SAY}
)

_ADAPTERS: dict[TopicKind, TypeAdapter[Any]] = {
    TopicKind.GATEWAY_ONLINE: TypeAdapter(DeviceStatus),
    TopicKind.FP_STATE: TypeAdapter(StateReport),
    TopicKind.FP_PROGRESS: TypeAdapter(FuellingProgress),
    TopicKind.FP_SALE: TypeAdapter(SaleReport),
    TopicKind.FP_SALE_ACK: TypeAdapter(SaleAck),
    TopicKind.FP_SALE_STATUS: TypeAdapter(SaleStatusReport),
    TopicKind.TANK_READING: TypeAdapter(TankReading),
    TopicKind.TANK_DELIVERY: TypeAdapter(TankDelivery),
    TopicKind.TANK_DELIVERY_ACK: TypeAdapter(DeliveryAck),
    TopicKind.COMMAND: TypeAdapter(Command),
    TopicKind.COMMAND_ACK: TypeAdapter(CommandAck),
    TopicKind.SPEAKER_ONLINE: TypeAdapter(DeviceStatus),
    TopicKind.SPEAKER_SAY: TypeAdapter(Announcement),
    TopicKind.SPEAKER_ACK: TypeAdapter(SpeakerAck),
}


@dataclass(frozen=True)
class Topic:
    """A parsed topic: its kind, the station code and the fp/tank/speaker number if any."""

    kind: TopicKind
    station: str
    number: int | None = None

    def __post_init__(self) -> None:
        if not STATION_RE.fullmatch(self.station):
            raise ValueError(f"bad station code {self.station!r}")
        if self.kind.numbered != (self.number is not None):
            raise ValueError(
                f"{self.kind.name} {'needs' if self.kind.numbered else 'takes no'} number"
            )
        if self.number is not None and not 1 <= self.number <= 9999:
            raise ValueError("numbers are 1..9999")

    def __str__(self) -> str:
        tail = self.kind.value.replace("{n}", str(self.number))
        return f"{ROOT}/{VERSION}/{self.station}/{tail}"


def build_topic(kind: TopicKind, station: str, number: int | None = None) -> str:
    """The topic string, e.g. forecourt/v1/S001/fp/2/state."""
    return str(Topic(kind, station, number))


def parse_topic(topic: str) -> Topic:
    """Parse a topic string, or raise ProtocolError(unknown_topic)."""
    parts = topic.split("/")
    if len(parts) < 4 or parts[0] != ROOT or parts[1] != VERSION:
        raise ProtocolError(ProtocolErrorKind.UNKNOWN_TOPIC, f"not a {ROOT}/{VERSION} topic")
    station, rest = parts[2], parts[3:]
    if not STATION_RE.fullmatch(station):
        raise ProtocolError(ProtocolErrorKind.UNKNOWN_TOPIC, "bad station code")
    for kind in TopicKind:
        template = kind.value.split("/")
        if len(template) != len(rest):
            continue
        number: int | None = None
        for want, got in zip(template, rest, strict=True):
            if want == "{n}":
                if not NUMBER_RE.fullmatch(got):
                    break
                number = int(got)
            elif want != got:
                break
        else:
            return Topic(kind, station, number)
    raise ProtocolError(ProtocolErrorKind.UNKNOWN_TOPIC, f"unknown topic {'/'.join(rest)!r}")


def topic_filter(kind: TopicKind, station: str = "+") -> str:
    """A subscription filter for a kind: `+` for the number, and for the station by default."""
    return f"{ROOT}/{VERSION}/{station}/" + kind.value.replace("{n}", "+")


def server_filters() -> list[str]:
    """Subscriptions of the server: everything devices publish, for every station."""
    return [topic_filter(k) for k in TopicKind if k.upstream]


def gateway_filters(station: str) -> list[str]:
    """Subscriptions of a station gateway: its commands and the server's sale/delivery acks."""
    kinds = (TopicKind.COMMAND, TopicKind.FP_SALE_ACK, TopicKind.TANK_DELIVERY_ACK)
    return [topic_filter(k, station) for k in kinds]


def speaker_filters(station: str, speaker: int) -> list[str]:
    """Subscription of one speaker: its announcements."""
    return [build_topic(TopicKind.SPEAKER_SAY, station, speaker)]


# -- encoding --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decoded:
    """A decoded message and the topic it came on."""

    topic: Topic
    message: Message


def _reason(exc: ValidationError) -> tuple[ProtocolErrorKind, str]:
    errors = exc.errors(include_url=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return ProtocolErrorKind.MALFORMED_JSON, str(errors[0]["msg"])
    parts = []
    for e in errors:
        loc = ".".join(str(p) for p in e["loc"]) or "payload"
        parts.append(f"{loc}: {e['msg']}")
    return ProtocolErrorKind.INVALID_PAYLOAD, "; ".join(parts)


def decode(topic: str, payload: bytes) -> Decoded:
    """Parse and validate one MQTT message, or raise ProtocolError with the reason."""
    parsed = parse_topic(topic)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(
            ProtocolErrorKind.TOO_LARGE, f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}"
        )
    try:
        message = cast(Message, _ADAPTERS[parsed.kind].validate_json(payload, strict=True))
    except ValidationError as exc:
        raise ProtocolError(*_reason(exc)) from None
    if isinstance(message, Announcement) and message.station != parsed.station:
        raise ProtocolError(
            ProtocolErrorKind.INVALID_PAYLOAD, "station: does not match the topic's station"
        )
    return Decoded(parsed, message)


def encode(message: Message) -> bytes:
    """The JSON payload for a message (UTC times with Z, nulls written out)."""
    return message.model_dump_json().encode()
