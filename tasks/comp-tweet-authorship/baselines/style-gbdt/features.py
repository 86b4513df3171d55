"""Style and posting-time features of a tweet (Robinson 2016: the two phones' tweets differ in
hour of day, links and pictures, quotation marks, hashtags and exclamation marks)."""

import pandas as pd


def style_features(df: pd.DataFrame) -> pd.DataFrame:
    t = pd.to_datetime(df["created_at"]).dt.tz_localize("UTC").dt.tz_convert("America/New_York")
    s = df["text"].astype(str)
    return pd.DataFrame(
        {
            "hour": t.dt.hour + t.dt.minute / 60.0,
            "weekday": t.dt.day_of_week,
            "length": s.str.len(),
            "link": s.str.contains("http").astype(int),
            "starts_quote": s.str.startswith('"').astype(int),
            "starts_dot_at": s.str.startswith(".@").astype(int),
            "hashtags": s.str.count("#"),
            "mentions": s.str.count("@"),
            "exclamations": s.str.count("!"),
            "caps_words": s.str.count(r"\b[A-Z]{3,}\b"),
        }
    )
