"""The PDF transcript (学习档案 / 学分证明)."""
