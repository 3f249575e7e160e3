"""Landmark locators: image + face box -> the 5 landmarks."""
