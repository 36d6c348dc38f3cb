from django.conf import settings
from django.db import models
from django.db.models import Q


class VideoStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class VideoJob(models.Model):
    """An asynchronous video generation: held at submit, settled per second once, when it ends."""

    id = models.CharField(primary_key=True, max_length=64, editable=False)
    request_id = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="video_jobs")
    token = models.ForeignKey("tokens.Token", on_delete=models.SET_NULL, null=True, related_name="+")
    channel = models.ForeignKey("groups.Channel", on_delete=models.SET_NULL, null=True, related_name="+")
    channel_name = models.CharField(max_length=64)
    group_name = models.CharField(max_length=64)
    fallback_used = models.BooleanField(default=False)
    model_name = models.CharField(max_length=128)
    upstream_model = models.CharField(max_length=128)
    upstream_job_id = models.CharField(max_length=128)
    prompt = models.TextField(blank=True)
    remixed_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    seconds = models.PositiveIntegerField()
    size = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=16, choices=VideoStatus.choices, default=VideoStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    error_message = models.CharField(max_length=500, blank=True)
    billing_mode = models.CharField(max_length=16)
    multiplier = models.DecimalField(max_digits=8, decimal_places=4)
    hold_micro = models.BigIntegerField(default=0)
    cost_micro = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)  # hidden from its owner; billing keeps it
    # The worker's poll chain: each poll hands `poll_seq` on to the next one, so a redelivered or
    # superseded poll message stops instead of starting a second chain; `polled_at` shows a lost one.
    poll_seq = models.PositiveIntegerField(default=0)
    polled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "settled_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(cost_micro__gte=0), name="videojob_cost_nonneg"),
            models.CheckConstraint(condition=Q(seconds__gte=1), name="videojob_seconds_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.model_name} {self.status}"
