"""Where each equation and algorithm of the paper lives in the package (one function each).

Equations that are derivations rather than computations -- (3), (5)-(8), (10), (12) -- have no
function of their own; the tests check them numerically through the functions below (e.g. eq (8)
through :func:`ressrdiff.diffusion.posterior`).
"""

EQUATIONS: dict[str, str] = {
    "eq (2)": "ressrdiff.diffusion.forward_step",
    "eq (4)": "ressrdiff.diffusion.q_sample",
    "eq (9)": "ressrdiff.diffusion.posterior",
    "eq (11)": "ressrdiff.diffusion.p_mean_variance",
    "eq (13)": "ressrdiff.methods.res_srdiff.loss_eq13",
    "eq (14)": "ressrdiff.schedule.sqrt_beta_eq14",
    "Algorithm 1": "ressrdiff.methods.res_srdiff.ResSRDiff.forward",
    "Algorithm 2": "ressrdiff.diffusion.sample",
}
