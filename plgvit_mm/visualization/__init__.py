"""Pictures of mono 3D results: projected 3D boxes and a bird's-eye view (cv2 + numpy)."""

from .bev import draw_bev
from .image_boxes3d import draw_boxes3d_on_image

__all__ = ["draw_bev", "draw_boxes3d_on_image"]
