from django.urls import path, re_path

from . import views

app_name = "relay"

urlpatterns = [
    path("chat/completions", views.chat_completions, name="chat_completions"),
    path("messages", views.messages, name="messages"),
    path("messages/count_tokens", views.count_tokens, name="count_tokens"),
    path("responses", views.responses, name="responses"),
    path("responses/<str:response_id>", views.response_detail, name="response_detail"),
    path("responses/<str:response_id>/input_items", views.response_input_items, name="response_input_items"),
    path("responses/<str:response_id>/cancel", views.response_cancel, name="response_cancel"),
    path("embeddings", views.embeddings, name="embeddings"),
    path("images/generations", views.images_generations, name="images_generations"),
    path("images/edits", views.images_edits, name="images_edits"),
    path("images/files/<str:image_id>", views.image_file, name="image_file"),
    path("rerank", views.rerank, name="rerank"),
    path("completions", views.completions, name="completions"),
    path("audio/speech", views.audio_speech, name="audio_speech"),
    path("audio/transcriptions", views.audio_transcriptions, name="audio_transcriptions"),
    path("models", views.models, name="models"),
    path("models/<path:model_id>", views.model_detail, name="model_detail"),
    path("videos", views.videos, name="videos"),
    path("videos/<str:video_id>", views.video_detail, name="video_detail"),
    path("videos/<str:video_id>/content", views.video_content, name="video_content"),
    path("videos/<str:video_id>/remix", views.video_remix, name="video_remix"),
    re_path(r"^(?P<rest>.*)$", views.unknown, name="unknown"),
]
