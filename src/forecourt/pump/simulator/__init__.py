"""Simulated station equipment speaking the pump protocol: gateways, pumps, gauges, speakers."""

from forecourt.pump.simulator.clock import SimClock
from forecourt.pump.simulator.gateway import GatewayConfig, GatewaySim, StationSpec
from forecourt.pump.simulator.host import Fault, HostOptions, SimulatorHost
from forecourt.pump.simulator.pump import FpSpec, NozzleSpec, PumpConfig, PumpSim, SimError
from forecourt.pump.simulator.speaker import SpeakerConfig, SpeakerDevice
from forecourt.pump.simulator.tanks import TankConfig, TankGauge, TankSim, TankSpec
from forecourt.pump.simulator.traffic import TrafficConfig, TrafficDriver

__all__ = [
    "Fault",
    "FpSpec",
    "GatewayConfig",
    "GatewaySim",
    "HostOptions",
    "NozzleSpec",
    "PumpConfig",
    "PumpSim",
    "SimClock",
    "SimError",
    "SimulatorHost",
    "SpeakerConfig",
    "SpeakerDevice",
    "StationSpec",
    "TankConfig",
    "TankGauge",
    "TankSim",
    "TankSpec",
    "TrafficConfig",
    "TrafficDriver",
]
