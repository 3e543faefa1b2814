"""Tracking runs: the one loop over frames (:mod:`cstrack.run.loop`) and what feeds it.

- :mod:`cstrack.run.frames`: :class:`~cstrack.run.frames.FrameInput` and the frame readers of a
  MOTChallenge folder (prefetch, frame workers; the seam of batched inference).
- :mod:`cstrack.run.loop`: :class:`~cstrack.run.loop.FrameLoop` (stage timing, limits, stop), the
  detect stage and the one result table.
- :mod:`cstrack.run.sequence`: a MOTChallenge folder in a detection mode (private, public, gt).
- :mod:`cstrack.run.source`: any frame source (video, images, camera, stream) with per-frame sinks
  (:mod:`cstrack.run.sinks`).
- :mod:`cstrack.run.detcache`: cached network outputs and their replay.
"""
