from . import nat  # noqa: F401  (registers NAT, DiNAT and timm nat_*/dinat_*)
from .plgvit import LWPLGViT, PLGViT  # noqa: F401  (also registers timm plgvit_*, lw_plgvit_*)
