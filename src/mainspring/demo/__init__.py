"""``mainspring demo``: the platform's main job, end to end on embedded defaults."""
