"""From metrics to judgement: sub-scores, overall score, tier, issues, recommendations.

Pure functions of (metrics, profile): the same photo under the same profile version
always gets the same report, which is what makes replays comparable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from imaging.metrics import QualityMetrics
from imaging.profile import SUB_SCORES, LinearScale, Profile


@dataclass(frozen=True)
class Recommendation:
    issue: str
    action: str
    target: dict[str, float | int]

    def as_dict(self) -> dict:
        return {"issue": self.issue, "action": self.action, "target": self.target}


@dataclass(frozen=True)
class Judgement:
    scores: dict[str, float]
    overall_score: float
    tier: str
    issues: list[str] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)


def linear_score(value: float, scale: LinearScale) -> float:
    """0 at ``scale.low``, 100 at ``scale.high`` (either direction), clamped."""
    fraction = (value - scale.low) / (scale.high - scale.low)
    return round(100.0 * min(1.0, max(0.0, fraction)), 2)


def sub_scores(m: QualityMetrics, profile: Profile) -> dict[str, float]:
    """0-100 per aspect; an aspect that could not be measured is absent."""
    s = profile.scores
    sharp = s.sharpness
    log_scale = LinearScale(math.log10(sharp.low), math.log10(sharp.high))
    b = s.brightness
    excess = max(0.0, m.brightness_deviation - b.tolerance)
    scores = {
        "sharpness": linear_score(math.log10(max(m.blur, 1e-6)), log_scale),
        "brightness": round(100.0 * max(0.0, 1.0 - excess / (b.worst - b.tolerance)), 2),
        "contrast": linear_score(m.contrast, s.contrast),
        "noise": linear_score(m.noise, s.noise),
        "resolution": linear_score(min(m.width, m.height), s.resolution),
        "background": linear_score(m.background_complexity, s.background),
    }
    if m.brisque is not None:
        scores["naturalness"] = linear_score(m.brisque, s.naturalness)
    return scores


def overall(scores: dict[str, float], profile: Profile) -> float:
    """Weighted mean of the sub-scores present (weights renormalised)."""
    weights = {n: getattr(profile.weights, n) for n in SUB_SCORES if n in scores}
    total = sum(weights.values())
    return round(sum(scores[n] * w for n, w in weights.items()) / total, 2) if total else 0.0


def find_issues(m: QualityMetrics, profile: Profile) -> list[Recommendation]:
    """Each problem with a concrete fix and the target to reach."""
    t, target = profile.issues, profile.targets
    found: list[Recommendation] = []
    short = min(m.width, m.height)
    if short < t.low_resolution_below:
        factor = target.short_side / short
        found.append(Recommendation(
            "low_resolution",
            f"upscale to {target.short_side} px on the short side "
            f"({m.width}x{m.height} -> {round(m.width * factor)}x{round(m.height * factor)})",
            {"short_side": target.short_side, "scale": round(factor, 3)}))
    if m.blur < t.blurry_below:
        found.append(Recommendation(
            "blurry",
            f"sharpen (unsharp mask) or re-shoot in focus: variance of Laplacian "
            f"{m.blur:.0f}, aim for {target.sharpness:.0f} or more",
            {"blur": target.sharpness}))
    if m.brightness_deviation > t.brightness_deviation_above:
        dark = m.brightness < profile.scores.brightness.ideal
        delta = target.brightness - m.brightness
        found.append(Recommendation(
            "underexposed" if dark else "overexposed",
            f"{'brighten' if dark else 'darken'} by {abs(delta):.0f} gray levels toward a "
            f"mean of {target.brightness:.0f} (now {m.brightness:.0f})",
            {"brightness": target.brightness}))
    if m.contrast < t.low_contrast_below:
        found.append(Recommendation(
            "low_contrast",
            f"raise contrast (CLAHE on luminance) to a gray spread of about "
            f"{target.contrast:.0f} (now {m.contrast:.0f})",
            {"contrast": target.contrast}))
    if m.noise > t.noisy_above:
        found.append(Recommendation(
            "noisy",
            f"denoise to a noise sigma of {target.noise:.0f} or less (now {m.noise:.1f})",
            {"noise": target.noise}))
    if m.background_complexity > t.cluttered_background_above:
        found.append(Recommendation(
            "cluttered_background",
            "replace the background with plain white (complexity "
            f"{m.background_complexity:.2f}, aim for {t.cluttered_background_above:.2f} or less)",
            {"background_complexity": 0.0}))
    if m.brisque is not None and m.brisque > t.low_perceptual_quality_above:
        found.append(Recommendation(
            "low_perceptual_quality",
            f"re-export at higher quality or re-shoot: BRISQUE {m.brisque:.0f}, aim for "
            f"below {t.low_perceptual_quality_above:.0f}",
            {"brisque": t.low_perceptual_quality_above}))
    return found


def judge(m: QualityMetrics, profile: Profile) -> Judgement:
    scores = sub_scores(m, profile)
    score = overall(scores, profile)
    recommendations = find_issues(m, profile)
    tiers = profile.tiers
    if score >= tiers.excellent and not (tiers.excellent_requires_no_issues and recommendations):
        tier = "excellent"
    elif score >= tiers.good:
        tier = "good"
    else:
        tier = "poor"
    return Judgement(scores, score, tier, [r.issue for r in recommendations], recommendations)
