"""Systems under test: fashiontag (any model file, any serving settings) and its peers."""

from benchmarks.systems.base import System
from benchmarks.systems.fashiontag import FashiontagSystem
from benchmarks.systems.peers import PEERS, RayServeSystem, TorchServeSystem

__all__ = ["System", "FashiontagSystem", "RayServeSystem", "TorchServeSystem", "PEERS"]
