"""MinAtar games stepped as a batch (fixed file; the harness's parent uses it, the head never does).

`make_games(game, sticky, seeds)` returns an object for len(seeds) environments with
  act(actions)  -> (rewards float32 (n,), terminals bool (n,), next observations uint8 (n,C,10,10))
  reset(mask)   resets the environments where mask is True (episode ends)
  obs()         observations uint8 (n, C, 10, 10) (channels first)
  channels, num_actions
Every environment behaves exactly as MinAtar's `Environment(game, sticky_action_prob=sticky)`
seeded with its seed and reset (Young & Tian 2019, minatar 1.0.15): the sticky-action draw is the
same `RandomState(seed).rand()` per action, and `tests/test_task_rl_value_visual.py` checks
states, rewards and terminals against the package step by step.

Space Invaders is re-written here on arrays over all environments at once (its Python game loop
was most of a run's environment time); the other games run MinAtar's own `Env` one by one. The
game modules are loaded from the installed package's files directly: `import minatar` would
import matplotlib and seaborn for rendering (2 s of CPU per run).
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np

NUM_ACTIONS = 6  # every MinAtar game: n, l, u, r, d, f


def _game_module(game: str):
    spec = importlib.util.find_spec("minatar")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the minatar package is not installed (pip install 'minatar>=1.0.15')")
    path = os.path.join(spec.submodule_search_locations[0], "environments", f"{game}.py")
    mod_spec = importlib.util.spec_from_file_location(f"_minatar_{game}", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod


class _Sticky:
    """MinAtar's Environment wrapper: with probability `sticky` the previous action repeats (the
    previous action survives resets); one uniform draw per action from the env's own stream."""

    def __init__(self, sticky: float, seeds):
        self.sticky = float(sticky)
        self.rngs = [np.random.RandomState(int(s)) for s in seeds]
        self.last = np.zeros(len(self.rngs), np.int64)

    def __call__(self, actions) -> np.ndarray:
        a = np.asarray(actions, np.int64).copy()
        stick = np.array([r.rand() < self.sticky for r in self.rngs])
        a[stick] = self.last[stick]
        self.last = a
        return a


class MinAtarGames:
    """Any MinAtar game: the package's own Env per environment, stepped in a loop."""

    def __init__(self, game: str, sticky: float, seeds):
        Env = _game_module(game).Env
        self.sticky = _Sticky(sticky, seeds)
        self.envs = []
        for rng in self.sticky.rngs:
            env = Env(ramping=True)
            env.random = rng  # Environment.seed: the game and the sticky draws share one stream
            env.reset()
            self.envs.append(env)
        self.channels = self.envs[0].state_shape()[2]
        self.num_actions = NUM_ACTIONS

    def obs(self) -> np.ndarray:
        return np.stack([e.state() for e in self.envs]).transpose(0, 3, 1, 2).astype(np.uint8)

    def act(self, actions):
        a = self.sticky(actions)
        r = np.zeros(len(self.envs), np.float32)
        done = np.zeros(len(self.envs), bool)
        for i, env in enumerate(self.envs):
            r[i], done[i] = env.act(int(a[i]))
        return r, done, self.obs()

    def reset(self, mask) -> None:
        for i in np.flatnonzero(mask):
            self.envs[i].reset()


class SpaceInvaders:
    """MinAtar Space Invaders (minatar/environments/space_invaders.py) on arrays (n, 10, 10);
    the game itself has no randomness, only the sticky actions."""

    SHOT_COOL_DOWN, ENEMY_MOVE_INTERVAL, ENEMY_SHOT_INTERVAL = 5, 12, 10
    channels, num_actions = 6, NUM_ACTIONS

    def __init__(self, sticky: float, seeds):
        self.sticky = _Sticky(sticky, seeds)
        n = len(self.sticky.rngs)
        self.n = n
        self.pos = np.zeros(n, np.int64)
        self.f_bullet = np.zeros((n, 10, 10), bool)
        self.e_bullet = np.zeros((n, 10, 10), bool)
        self.alien = np.zeros((n, 10, 10), bool)
        self.alien_dir = np.zeros(n, np.int64)
        self.move_interval = np.zeros(n, np.int64)
        self.move_timer = np.zeros(n, np.int64)
        self.shot_timer_alien = np.zeros(n, np.int64)
        self.shot_timer = np.zeros(n, np.int64)
        self.reset(np.ones(n, bool))
        # the search order of Env._nearest_alien: columns by distance to the cannon, ties to the left
        self.order = np.array([sorted(range(10), key=lambda x: abs(x - p)) for p in range(10)])

    def reset(self, mask) -> None:
        m = np.asarray(mask, bool)
        self.pos[m] = 5
        self.f_bullet[m] = False
        self.e_bullet[m] = False
        self.alien[m] = False
        self.alien[np.ix_(m, range(0, 4), range(2, 8))] = True
        self.alien_dir[m] = -1
        self.move_interval[m] = self.ENEMY_MOVE_INTERVAL
        self.move_timer[m] = self.ENEMY_MOVE_INTERVAL
        self.shot_timer_alien[m] = self.ENEMY_SHOT_INTERVAL
        self.shot_timer[m] = 0

    def obs(self) -> np.ndarray:
        s = np.zeros((self.n, 6, 10, 10), np.uint8)
        s[np.arange(self.n), 0, 9, self.pos] = 1
        s[:, 1] = self.alien
        left = self.alien_dir < 0
        s[left, 2] = self.alien[left]
        s[~left, 3] = self.alien[~left]
        s[:, 4] = self.f_bullet
        s[:, 5] = self.e_bullet
        return s

    def act(self, actions):
        a = self.sticky(actions)
        ar = np.arange(self.n)
        fire = (a == 5) & (self.shot_timer == 0)
        self.f_bullet[ar[fire], 9, self.pos[fire]] = True
        self.shot_timer[fire] = self.SHOT_COOL_DOWN
        self.pos = np.where(a == 1, np.maximum(0, self.pos - 1), self.pos)
        self.pos = np.where(a == 3, np.minimum(9, self.pos + 1), self.pos)
        # bullets: friendly ones up a row, enemy ones down a row (np.roll, the wrapped row cleared)
        self.f_bullet[:, :9] = self.f_bullet[:, 1:].copy()
        self.f_bullet[:, 9] = False
        self.e_bullet[:, 1:] = self.e_bullet[:, :9].copy()
        self.e_bullet[:, 0] = False
        done = self.e_bullet[ar, 9, self.pos] | self.alien[ar, 9, self.pos]
        move = self.move_timer == 0
        if move.any():
            count = self.alien.reshape(self.n, -1).sum(1)
            self.move_timer[move] = np.minimum(count, self.move_interval)[move]
            edge = move & ((self.alien[:, :, 0].any(1) & (self.alien_dir < 0))
                           | (self.alien[:, :, 9].any(1) & (self.alien_dir > 0)))
            done |= edge & self.alien[:, 9, :].any(1)
            self.alien[edge] = np.roll(self.alien[edge], 1, axis=1)
            for d in (-1, 1):
                side = move & ~edge & (self.alien_dir == d)
                self.alien[side] = np.roll(self.alien[side], d, axis=2)
            self.alien_dir[edge] = -self.alien_dir[edge]
            done |= move & self.alien[ar, 9, self.pos]
        shoot = np.flatnonzero(self.shot_timer_alien == 0)
        if len(shoot):
            self.shot_timer_alien[shoot] = self.ENEMY_SHOT_INTERVAL
            for i in shoot:  # the alien nearest the cannon (by column) shoots from its lowest row
                cols = self.alien[i].any(0)
                col = next(c for c in self.order[self.pos[i]] if cols[c])
                row = np.flatnonzero(self.alien[i, :, col]).max()
                self.e_bullet[i, row, col] = True
        kill = self.alien & self.f_bullet
        r = kill.reshape(self.n, -1).sum(1).astype(np.float32)
        self.alien &= ~kill
        self.f_bullet &= ~kill
        self.shot_timer -= self.shot_timer > 0
        self.move_timer -= 1
        self.shot_timer_alien -= 1
        cleared = ~self.alien.reshape(self.n, -1).any(1)
        if cleared.any():  # a new wave, faster (down to one move per 6 frames)
            self.move_interval[cleared & (self.move_interval > 6)] -= 1
            self.alien[np.ix_(cleared, range(0, 4), range(2, 8))] = True
        return r, done, self.obs()


def make_games(game: str, sticky: float, seeds):
    if game == "space_invaders":
        return SpaceInvaders(sticky, seeds)
    return MinAtarGames(game, sticky, seeds)
