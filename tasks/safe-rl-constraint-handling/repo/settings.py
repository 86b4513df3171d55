"""Fixed file. The visible settings: layout (body, arena, hazards) and the fixed budget."""

COMMON = {"n_envs": 16, "horizon": 200, "updates": 40, "eval_episodes": 64}

SETTINGS = {
    "point-goal": {"layout": {"body": "point", "arena": 2.0, "hazards": 6, "hazard_radius": 0.35},
                   "cost_limit": 5.0, **COMMON},
    "car-goal": {"layout": {"body": "car", "arena": 2.0, "hazards": 6, "hazard_radius": 0.35},
                 "cost_limit": 5.0, **COMMON},
    "point-goal-dense": {"layout": {"body": "point", "arena": 2.0, "hazards": 8, "hazard_radius": 0.3,
                                    "cluster": 0.5},
                         "cost_limit": 5.0, **COMMON},
}
